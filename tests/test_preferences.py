"""Preferences: synthetic (from the hidden fitness), from an LLM judge, and what the designer is then told.

The end-to-end runs go through the real command line, a loopback chat server
with a scripted designer (`llm_persona.preference_persona`), real checks and
real (tiny) trainings.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from autoreward.config import Fitness, LoopConfig
from autoreward.errors import AutorewardError
from autoreward.llm.backends import ReplayLLM
from autoreward.llm.prompts import Prompts
from autoreward.loop.driver import DesignLoop
from autoreward.loop.judge import judge
from autoreward.loop.preferences import SyntheticPreferences
from autoreward.loop.runner import Runner
from autoreward.loop.selection import ByPreference
from autoreward.records import Preference
from autoreward.serialize import read_json, to_dict
from autoreward.task.files import find_task

from .chat_server import ChatServer
from .conftest import candidates_of, run_cli_to_end
from .llm_persona import preference_persona, preference_persona_one_round
from .review_fixtures import make_run, trained

THIGH_FITNESS = "np.clip(action[:, 0], -1.0, 1.0)"
THIGH_TASK = f"""
id = "cheetah_thigh"
env = "HalfCheetah-v5"
description = "Keep the half cheetah's back thigh pushed forward, as hard as it can."
max_episode_steps = 40

[fitness]
step = "{THIGH_FITNESS}"
reduce = "mean"
description = "mean command of the back thigh actuator"

[budget]
steps = 512
n_envs = 2
eval_episodes = 2
curve_points = 2
"""


def test_synthetic_preferences_rank_by_the_fitness_either_way():
    task = find_task("half_cheetah_backward")
    pool = [trained(1, 0, 0.5), trained(2, 0, 1.5), trained(2, 1, -1.0)]
    preference = SyntheticPreferences(task).choose(2, pool)
    assert (preference.best_id, preference.worst_id, preference.source) == ("r2c0", "r2c1", "synthetic")
    assert preference.pairs == (("r2c0", "r1c0"), ("r1c0", "r2c1")) and preference.candidate_ids == (
        "r1c0",
        "r2c0",
        "r2c1",
    )
    lower = type(task)(**{**task.__dict__, "fitness": Fitness("x", "mean", "y", higher_is_better=False)})
    assert SyntheticPreferences(lower).choose(2, pool).best_id == "r2c1"


def test_a_preference_naming_what_was_not_shown_says_so():
    preference = Preference(1, "r1c0", worst_id="r1c0")
    assert "both the best and the worst" in preference.problem(["r1c0", "r1c1"])
    assert "r9c9, which the round did not show" in Preference(1, "r9c9").problem(["r1c0"])
    assert Preference(1, "r1c0", "r1c1", (("r1c0", "r1c1"),)).problem(["r1c0", "r1c1"]) is None


def test_the_judge_names_the_best_and_the_worst(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"tag": "r1/judge", "reply": "BEST: **r1c1**\nWORST: r1c0\n- steadier"}) + "\n")
    pool = [trained(1, 0, 0.5), trained(1, 1, 1.5)]
    best, worst, reasons = judge(
        ReplayLLM(path), Prompts(), find_task("half_cheetah_backward"), LoopConfig(), pool, "r1/judge"
    )
    assert (best.id, worst.id, reasons) == ("r1c1", "r1c0", "steadier")


def _designer_requests(server: ChatServer) -> list[str]:
    return [
        r["messages"][1]["content"]
        for r in server.requests
        if len(r["messages"]) == 2 and r["messages"][0]["role"] == "system"
    ]


@pytest.mark.slow
def test_synthetic_preferences_improve_the_task_score_without_showing_it(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cheetah_thigh.toml").write_text(THIGH_TASK)
    flags = [
        "run",
        "cheetah_thigh",
        "--tasks-dir",
        "tasks",
        "--feedback",
        "synthetic",
        "--rounds",
        "2",
        "--candidates",
        "2",
        "--repairs",
        "1",
        "--final-seeds",
        "1",
        "--workers",
        "2",
    ]
    with ChatServer(responder=preference_persona) as server:
        run_cli_to_end(flags, server.url, tmp_path)
    (run,) = (tmp_path / "runs").glob("cheetah_thigh__design*")
    candidates = candidates_of(run)
    assert all(c.status == "trained" for c in candidates.values()), {k: c.message for k, c in candidates.items()}
    first = read_json(run / "round_1" / "preference.json", Preference)
    assert (first.best_id, first.worst_id, first.source) == ("r1c1", "r1c0", "synthetic")  # STEADY over PULL
    # Round 2 built on what was preferred: it pushes the thigh forward, and scores better than any of round 1.
    assert all("# PUSH" in candidates[k].code for k in ("r2c0", "r2c1"))
    best_of = {n: max(c.fitness for c in candidates.values() if c.round == n) for n in (1, 2)}
    assert best_of[2] > best_of[1] + 0.02, best_of
    assert read_json(run / "round_2" / "round.json")["best_so_far_id"] in ("r2c0", "r2c1")
    # The designer was told what was preferred and rejected, never a task score.
    (second,) = [r for r in _designer_requests(server) if "The best reward so far" in r][:1]
    assert "# STEADY" in second and "# PULL" in second and "compared by a score that is not shown to you" in second
    scores = {f"{c.fitness:{form}}" for c in candidates.values() for form in (".4g", ".3g")}
    scores = {s for s in scores if sum(ch.isdigit() for ch in s.lstrip("-0.")) >= 3}  # "0.1" is in programs too
    for request in server.requests:
        for message in request["messages"]:
            text = message["content"]
            assert THIGH_FITNESS not in text and "mean command of the back thigh actuator" not in text
            assert "task score" not in text.lower(), text
            assert not [s for s in scores if f" {s} " in text or f" {s}," in text or f"{s})" in text], text
    assert read_json(run / "final" / "final.json")["candidate_id"] in ("r2c0", "r2c1")


@pytest.mark.slow
def test_llm_preferences_on_a_task_with_no_fitness(tmp_path):
    flags = [
        "run",
        "--env",
        "HalfCheetah-v5",
        "Keep the back thigh pushed forward.",
        "--feedback",
        "llm",
        "--rounds",
        "2",
        "--candidates",
        "2",
        "--repairs",
        "0",
        "--final-seeds",
        "1",
        "--steps",
        "512",
        "--envs",
        "2",
        "--eval-episodes",
        "1",
        "--workers",
        "2",
    ]
    with ChatServer(responder=preference_persona_one_round) as server:
        run_cli_to_end(flags, server.url, tmp_path)
    (run,) = (tmp_path / "runs").glob("halfcheetah_v5__*")
    preference = read_json(run / "round_1" / "preference.json", Preference)
    assert (preference.best_id, preference.worst_id, preference.source) == ("r1c1", "r1c0", "llm")
    assert preference.comment == "r1c0 holds the thigh back the whole episode; r1c1 at least does not fight the task"
    (second,) = [r for r in _designer_requests(server) if "The best reward so far" in r][:1]
    assert "# STEADY" in second  # the preferred program, as the best so far
    assert "# PULL" in second and "compared by a judge reading what each policy did" in second  # the rejected one
    assert "r1c0 holds the thigh back the whole episode" in second
    assert not (run / "round_2" / "preference.json").exists()  # nothing trained in round 2: nothing to judge
    final = read_json(run / "final" / "final.json")
    assert final["candidate_id"] == "r1c1" and final["fitness_mean"] is None
    report = (run / "export" / "reward_report.md").read_text()
    assert "chosen by an LLM judge's preferences" in report
    # Both reports show the round's preference, as recorded.
    shown = "best r1c1; worst r1c0; of r1c0, r1c1."
    assert f"**Preference** (an LLM judge): {shown}" in report and preference.comment in report
    page = (run / "report.html").read_text()
    assert f"<strong>Preference</strong> (an LLM judge): {shown}" in page and preference.comment in page


def test_a_preference_reads_as_one_sentence():
    from autoreward.review.report import preference_sentence

    assert preference_sentence(Preference(round=1, best_id="r1c2")) == "best r1c2."
    full = Preference(
        round=2,
        best_id="r2c0",
        worst_id="r1c1",
        pairs=(("r2c0", "r1c1"), ("r2c1", "r1c1")),
        comment="r1c1 falls over",
        source="human",
        candidate_ids=("r1c1", "r2c0", "r2c1"),
    )
    assert preference_sentence(full) == (
        'best r2c0; worst r1c1; chose r2c0 over r1c1, r2c1 over r1c1; of r1c1, r2c0, r2c1. Comment: "r1c1 falls over"'
    )


def test_a_candidate_stopped_by_halving_never_enters_a_preference_pool(tmp_path):
    store = make_run(tmp_path / "runs", feedback="synthetic")
    task = store.config().task
    stopped = dataclasses.replace(trained(1, 1, 9.0), stopped_at=128)  # the highest score, of a shorter training
    selection = ByPreference(SyntheticPreferences(task), store, lambda text: None).select(
        1, None, [trained(1, 0, 0.5), stopped, trained(1, 2, 1.5)]
    )
    assert selection.preference.candidate_ids == ("r1c0", "r1c2") and selection.best.id == "r1c2"


def _replies(tmp_path, replies: dict[str, str]):
    path = tmp_path / "replies.jsonl"
    path.write_text("".join(json.dumps({"tag": tag, "reply": reply}) + "\n" for tag, reply in replies.items()))
    return path


def test_a_run_with_halving_and_preference_feedback_is_refused(tmp_path):
    store = make_run(tmp_path / "runs", feedback="synthetic")
    config = store.config()
    halved = dataclasses.replace(config, loop=dataclasses.replace(config.loop, halving=True))
    (store.path / "config.json").write_text(json.dumps(to_dict(halved)))
    with pytest.raises(
        AutorewardError, match="--halving ranks its rungs by the task score, which --feedback synthetic"
    ):
        DesignLoop(store, ReplayLLM(_replies(tmp_path, {})), Prompts(), tmp_path / "runs", Runner.connect())
