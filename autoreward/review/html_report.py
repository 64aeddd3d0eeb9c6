"""A run as one self-contained HTML file: the facts `report.gather_run` reads, rendered by a Jinja2 template.

Everything is inside the file (styles, highlighted code, training curves
as inline SVG) except the videos, which are linked by relative paths and
play inline when the file is opened from where it was written (by default
the run folder, `RUN/report.html`). Nothing is fetched from the network.

Reward code, explanations and reviews were written by an LLM: the template
escapes everything (autoescape), and the only markup that goes in
unescaped is Pygments' highlighting, which escapes the code itself.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from pathlib import Path

import jinja2
from markupsafe import Markup

from autoreward.loop.run_store import RunStore
from autoreward.records import RunFacts, TrainingResult
from autoreward.resources import TEMPLATES_DIR
from autoreward.review.plots import Plot, line_plot
from autoreward.review.report import (
    PREFERENCE_SOURCES,
    RECIPE_COLUMNS,
    chosen_by,
    confirmation_sentence,
    form_report_line,
    form_rows,
    gather_run,
    hacking,
    outcome,
    preference_sentence,
    recipe_table,
)

TEMPLATE = "report.html.j2"
REPORT_FILE = "report.html"  # written into the run folder at the end of a run


def write_html_report(store: RunStore, path: Path | None = None) -> Path:
    """Write the run's report to `path` (default: RUN/report.html), with video links relative to where it is."""
    path = Path(path or store.path / REPORT_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = html_report(gather_run(store), path.parent)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return path


def html_report(facts: RunFacts, destination: Path) -> str:
    """The HTML text of the report, to be saved in folder `destination` (which decides the video links)."""
    run = Path(facts.path).resolve()
    destination = Path(destination).resolve()

    def link(relative: str) -> str:
        return urllib.parse.quote(Path(os.path.relpath(run / relative, destination)).as_posix())

    def video(folder: str, training: TrainingResult | None) -> str | None:
        if training is None or training.video is None or not (run / folder / training.video).exists():
            return None
        return link(f"{folder}/{training.video}")

    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            facts=facts,
            config=facts.config,
            task=facts.config.task,
            members=lambda number: [c for c in facts.candidates if c.round == number],
            outcome=outcome,
            hacking=lambda candidate: hacking(candidate, facts),
            chosen_by=chosen_by(facts.config.loop.feedback),
            preference_sources=PREFERENCE_SOURCES,
            preference_sentence=preference_sentence,
            confirmation_sentence=confirmation_sentence,
            recipe_columns=RECIPE_COLUMNS,
            recipe_rows=recipe_table(facts),
            form_rows=form_rows(facts) if len(facts.config.loop.forms) > 1 else [],
            form_line=form_report_line,
            video=video,
            link=link,
            plots=curve_plots,
            generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        )
    )


def curve_plots(training: TrainingResult) -> list[Plot]:
    """The task score and the reward (total and each component's mean) over training steps."""
    fitness = {"task score": [(p.step, p.fitness) for p in training.curve]}
    reward = {"reward (mean per step)": [(p.step, p.reward_mean) for p in training.curve]}
    for point in training.curve:
        for name, stats in point.components.items():
            reward.setdefault(name, []).append((point.step, stats.mean))
    plots = [line_plot("task score on training episodes", fitness), line_plot("reward and its components", reward)]
    return [p for p in plots if not p.empty]


def highlighted(code: str | None) -> Markup:
    """Python code as HTML with Pygments' classes; Pygments escapes the code."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return Markup(highlight(code or "", PythonLexer(), HtmlFormatter(cssclass="code")))


def _code_styles() -> Markup:
    from pygments.formatters import HtmlFormatter

    return Markup(HtmlFormatter(style="default").get_style_defs(".code"))


def _number(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _percent(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,  # LLM text and reward code are untrusted
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(number=_number, percent=_percent, code=highlighted)
    environment.globals["code_styles"] = _code_styles
    return environment
