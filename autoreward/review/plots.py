"""Line plots as geometry for an inline SVG: no plotting library, nothing fetched, text left to the template.

`line_plot` maps named series of (x, y) points into a fixed drawing area
and picks round tick values; the HTML report's template draws the result
as `<svg>` elements, so every name (a reward component named by LLM code)
goes through the template's escaping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 420, 220
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 12, 24, 34
# Colour-blind-safe (Okabe-Ito), then repeated.
COLOURS = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#000000")


@dataclass(frozen=True)
class Line:
    name: str
    colour: str
    points: str  # "x,y x,y ..." in drawing coordinates, for <polyline points=...>
    dots: tuple[tuple[float, float], ...]  # the same points, for markers (a single point shows as a dot)


@dataclass(frozen=True)
class Tick:
    at: float  # drawing coordinate
    label: str


@dataclass(frozen=True)
class Plot:
    title: str
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    lines: tuple[Line, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    x_label: str

    @property
    def empty(self) -> bool:
        return not self.lines


def line_plot(title: str, series: dict[str, list[tuple[float, float]]], x_label: str = "training steps") -> Plot:
    """A plot of each named series (points with a non-finite value are left out)."""
    kept = {
        name: [(float(x), float(y)) for x, y in points if y is not None and math.isfinite(x) and math.isfinite(y)]
        for name, points in series.items()
    }
    kept = {name: points for name, points in kept.items() if points}
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    if not kept:
        return Plot(title, WIDTH, HEIGHT, left, right, top, bottom, (), (), (), x_label)
    xs = [x for points in kept.values() for x, _ in points]
    ys = [y for points in kept.values() for _, y in points]
    x_ticks, (x_low, x_high) = _ticks(min(xs), max(xs))
    y_ticks, (y_low, y_high) = _ticks(min(ys), max(ys))

    def sx(x: float) -> float:
        return round(left + (x - x_low) / (x_high - x_low) * (right - left), 1)

    def sy(y: float) -> float:
        return round(bottom - (y - y_low) / (y_high - y_low) * (bottom - top), 1)

    lines = []
    for index, (name, points) in enumerate(kept.items()):
        dots = tuple((sx(x), sy(y)) for x, y in points)
        lines.append(Line(name, COLOURS[index % len(COLOURS)], " ".join(f"{x},{y}" for x, y in dots), dots))
    return Plot(
        title,
        WIDTH,
        HEIGHT,
        left,
        right,
        top,
        bottom,
        tuple(lines),
        tuple(Tick(sx(v), _label(v)) for v in x_ticks),
        tuple(Tick(sy(v), _label(v)) for v in y_ticks),
        x_label,
    )


def _ticks(low: float, high: float, count: int = 4) -> tuple[list[float], tuple[float, float]]:
    """Round tick values covering [low, high], and the range they span."""
    if high - low < 1e-12 * max(1.0, abs(low), abs(high)):
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(low / step) * step, math.ceil(high / step) * step
    values = [first + k * step for k in range(int(round((last - first) / step)) + 1)]
    return values, (first, last)


def _label(value: float) -> str:
    """A tick label: 20k, 1.5M, 0.25, 3e-05."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2g}"
    return f"{round(value, 10):.4g}"
