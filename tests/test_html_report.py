"""The HTML report: one self-contained file per run, with every candidate, its code, curves and video, and LLM text escaped."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys

import pytest

from autoreward.config import Budget, LLMSettings, LoopConfig, RunConfig
from autoreward.loop.run_store import RunStore
from autoreward.review.html_report import html_report
from autoreward.review.plots import line_plot
from autoreward.review.report import gather_run
from autoreward.task.files import find_task

from .chat_server import Reply
from .conftest import ONE_ROUND_FLAGS, candidates_of, run_cli_to_end, the_run
from .llm_persona import persona

HOSTILE = "</script><script>alert(1)</script>"


def hostile_persona(body: dict) -> Reply:
    """The test persona, with markup in every designer's prose and as a comment in every program."""
    reply = persona(body)
    if "```python\n" not in reply.text:
        return reply
    text = f"{HOSTILE} " + reply.text.replace("```python\n", f"```python\n# {HOSTILE}\n", 1)
    return Reply(text, reply.prompt_tokens, reply.completion_tokens)


def _attributes(page: str, name: str) -> list[str]:
    return re.findall(rf'\b{name}="([^"]*)"', page)


@pytest.mark.slow
def test_a_runs_report_shows_every_candidate_with_code_curves_and_video_and_loads_nothing_from_outside(workspace):
    from .chat_server import ChatServer

    flags = [
        "run",
        "cheetah_back_short",
        "--tasks-dir",
        "tasks",
        *ONE_ROUND_FLAGS,
    ]
    with ChatServer(responder=hostile_persona) as server:
        output = run_cli_to_end(flags, server.url, workspace)
    run = the_run(workspace)
    assert "open it in a browser" in " ".join(output.split())
    page = (run / "report.html").read_text()
    candidates = candidates_of(run)
    assert set(candidates) == {"r1c0", "r1c1"}
    for candidate in candidates.values():
        assert f'id="{candidate.id}"' in page
        assert candidate.status == "trained" and candidate.training.video == "evaluation/video.mp4"
        assert f'<video src="round_1/{candidate.id}/training/evaluation/video.mp4"' in page
        assert (run / f"round_1/{candidate.id}/training/evaluation/video.mp4").stat().st_size > 1000
        assert "compute_reward" in page and "not_vectorized" in page  # the code, and the first check's failure
    assert "Critic: reject" in page and "flip its sign" in page  # r1c1's review, then its repair
    assert page.count("<svg") >= 4  # two plots per trained candidate
    assert "Human-normalized score" in page  # the final result against the baselines
    with sqlite3.connect(run / "index.sqlite") as db:
        tokens = db.execute("SELECT SUM(prompt_tokens) FROM llm_call").fetchone()[0]
    assert f"{tokens} prompt" in page
    # Nothing is loaded from elsewhere: no scripts, no stylesheets, no remote sources.
    assert "<script" not in page.lower().replace("&lt;script", "")
    assert "<link" not in page and "url(" not in page and "@import" not in page
    for value in _attributes(page, "src") + _attributes(page, "href"):
        assert not value.startswith(("http:", "https:", "//", "javascript:")), value
    # The LLM's markup is shown as text, in the prose and in the code.
    assert HOSTILE not in page and "alert(1)" in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page

    # Written elsewhere, its video links still reach the run folder's videos.
    other = workspace / "shared" / "deeper"
    result = subprocess.run(
        [sys.executable, "-m", "autoreward", "report", str(run), "-o", str(other / "r.html")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    sources = [s for s in _attributes((other / "r.html").read_text(), "src") if s.endswith("video.mp4")]
    assert len(set(sources)) == 2 and all((other / s).resolve().is_file() for s in sources)


def test_a_run_without_results_yet_still_has_a_report(tmp_path):
    task = find_task("half_cheetah_backward")
    loop = LoopConfig(rounds=1, candidates=1, budget=Budget(steps=64))
    config = RunConfig("a_run", task, loop, LLMSettings(base_url="https://example.invalid/v1"), "2026-01-01", "0.1.0")
    store = RunStore.create(tmp_path / "run", config)
    (store.path / "round_1").mkdir(exist_ok=True)
    (store.path / "round_1" / "preference.json").write_text('{"best_id": ')  # a person's half-written file
    page = html_report(gather_run(store), store.path)
    assert "No final result yet" in page and task.description in page and "Preference" not in page
    for value in _attributes(page, "src") + _attributes(page, "href"):
        assert not value.startswith(("http:", "https:")), value


def test_a_plot_keeps_its_points_in_the_drawing_and_skips_missing_values():
    plot = line_plot("t", {"a": [(0, 1.0), (10, None), (20, 3.0)], "nothing": [(0, None)]})
    assert [line.name for line in plot.lines] == ["a"]
    (line,) = plot.lines
    assert len(line.dots) == 2
    for x, y in line.dots:
        assert plot.left <= x <= plot.right and plot.top <= y <= plot.bottom
    assert line_plot("t", {}).empty
    flat = line_plot("t", {"a": [(0, 2.0), (5, 2.0)]})  # a constant series still gets a range
    assert all(plot.top <= y <= plot.bottom for _, y in flat.lines[0].dots)
