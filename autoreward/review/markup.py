"""The only markup the review page inserts as is: pygments' highlighting of a reward program (pygments escapes
the code it colours) and a training curve as inline SVG (built from numbers alone). Everything else on the
page is text the templates escape."""

from __future__ import annotations

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from autoreward.records import CurvePoint

_FORMATTER = HtmlFormatter(noclasses=True, nowrap=False, style="friendly")


def code_html(code: str) -> Markup:
    return Markup(highlight(code, PythonLexer(), _FORMATTER))  # pygments escapes the code


def curve_svg(curve: tuple[CurvePoint, ...], width: int = 360, height: int = 120) -> Markup | None:
    """The training curve as inline SVG: the mean reward per step, and the task score where there is one."""
    if len(curve) < 2:
        return None
    steps = [p.step for p in curve]
    lines = [("reward per step", "#1f77b4", [p.reward_mean for p in curve])]
    scores = [p.fitness for p in curve]
    if all(v is not None for v in scores):
        lines.append(("task score", "#d62728", scores))
    pad = 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}" role="img">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for number, (label, colour, values) in enumerate(lines):
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        points = " ".join(
            f"{pad + (width - 2 * pad) * (s - steps[0]) / ((steps[-1] - steps[0]) or 1):.1f},"
            f"{height - pad - (height - 2 * pad) * (v - low) / span:.1f}"
            for s, v in zip(steps, values)
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
        parts.append(
            f'<text x="{4 + number * width // 2}" y="{height + 12}" font-size="10" fill="{colour}">'
            f"{label}: {low:.3g} to {high:.3g}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
