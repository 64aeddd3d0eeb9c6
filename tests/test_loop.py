"""The design loop: designer, checker, critic, analyzer, rounds, run folders, resume, the command line.

The end-to-end runs go through a real HTTP server on loopback that speaks the
chat-completions protocol to the real `openai` client, with a scripted
persona (`llm_persona.py`) answering, and real checks and real (tiny) training.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoreward.config import LoopConfig
from autoreward.llm.backends import ReplayLLM
from autoreward.llm.prompts import Prompts
from autoreward.loop.critic import parse_critique
from autoreward.loop.design import CandidateDesigner, DesignBrief
from autoreward.loop.run_store import RunStore
from autoreward.loop.runner import Runner
from autoreward.records import Preference
from autoreward.serialize import read_json
from autoreward.task.files import find_task

from .chat_server import ChatServer, text_of
from .conftest import ONE_ROUND_FLAGS, RUN_FLAGS, SECRET, SHORT_TASK, candidates_of, run_cli_to_end, start_cli, the_run
from .llm_persona import persona, persona_with_a_reversed_candidate
from .review_fixtures import make_run

# --- the critic's verdict ------------------------------------------------------


@pytest.mark.parametrize(
    "reply, verdict, reasons",
    [
        ("VERDICT: ACCEPT\n- fine", "accept", ("fine",)),
        ("Some thoughts.\n**VERDICT: REJECT**\n- wrong sign\n- wrong axis", "reject", ("wrong sign", "wrong axis")),
        ("verdict: reject\n- too large", "reject", ("too large",)),
    ],
)
def test_critic_verdicts_are_read_with_their_reasons(reply, verdict, reasons):
    critique = parse_critique(reply)
    assert (critique.verdict, critique.reasons) == (verdict, reasons)


def test_a_critic_reply_without_a_verdict_does_not_hold_a_candidate_back():
    critique = parse_critique("I think this reward is probably fine, but who knows.")
    assert critique.verdict == "accept"
    assert "no VERDICT" in critique.reasons[0]


# --- one candidate, from a transcript ------------------------------------------


def _transcript(tmp_path: Path, replies: dict[str, str]) -> ReplayLLM:
    path = tmp_path / "transcript.jsonl"
    path.write_text("".join(json.dumps({"tag": tag, "reply": text}) + "\n" for tag, text in replies.items()))
    return ReplayLLM(path)


def test_an_error_that_ends_a_run_marks_it_failed_with_the_reason(tmp_path):
    from autoreward.errors import LLMError
    from autoreward.loop.driver import DesignLoop

    store = make_run(tmp_path / "runs", name="ends", feedback="fitness")
    with pytest.raises(LLMError, match="no") as ended:
        DesignLoop(store, _transcript(tmp_path, {}), Prompts(), tmp_path / "runs", Runner.connect()).run()
    assert store.status() == f"failed: {str(ended.value).splitlines()[0]}"


def _brief() -> DesignBrief:
    return DesignBrief("Run backwards.", "class State: ...")


GOOD = "```python\nimport numpy as np\n\ndef compute_reward(state, action, next_state):\n    v = -next_state.qvel[:, 0]\n    return v, {'speed': v}\n```"
NAN = "```python\nimport numpy as np\n\ndef compute_reward(state, action, next_state):\n    v = np.log(next_state.qvel[:, 0] - 1e9)\n    return v, {'speed': v}\n```"


def test_a_failing_program_is_sent_back_with_its_error_and_the_repair_is_kept(tmp_path):
    llm = _transcript(tmp_path, {"r1/c0/designer": "Here:\n" + NAN, "r1/c0/repair1": "Fixed:\n" + GOOD})
    seen = []
    recording = type(
        "Recording", (), {"complete": lambda self, request: seen.append(request) or llm.complete(request)}
    )()
    designer = CandidateDesigner(
        recording, Prompts(), find_task("half_cheetah_backward"), LoopConfig(critic=False, repair_attempts=1)
    )
    candidate = designer.design(_brief(), 1, 0, tmp_path / "c0")
    assert candidate.status == "ready"
    assert [a.check.category.value for a in candidate.attempts] == ["non_finite", "ok"]
    repair_request = seen[1].messages[-1].content
    assert "non_finite" in repair_request and "np.log" in repair_request  # the error and the failing code
    assert seen[1].messages[-2].role == "assistant"  # the same conversation continues
    assert candidate.attempts[1].explanation == "Fixed:"


def test_a_candidate_the_critic_keeps_rejecting_is_dropped_with_its_reasons(tmp_path):
    llm = _transcript(
        tmp_path,
        {
            "r1/c0/designer": GOOD,
            "r1/c0/critic0": "VERDICT: REJECT\n- wrong sign",
            "r1/c0/repair1": GOOD,
            "r1/c0/critic1": "VERDICT: REJECT\n- still the wrong sign",
        },
    )
    designer = CandidateDesigner(llm, Prompts(), find_task("half_cheetah_backward"), LoopConfig(repair_attempts=1))
    candidate = designer.design(_brief(), 1, 0, tmp_path / "c0")
    assert candidate.status == "rejected"
    assert candidate.message == "the critic rejected it: still the wrong sign"


def test_a_reply_without_python_is_repaired_then_dropped_with_a_clear_reason(tmp_path):
    llm = _transcript(tmp_path, {"r2/c1/designer": "Sorry, I cannot.", "r2/c1/repair1": "```js\nlet r = 0;\n```"})
    designer = CandidateDesigner(llm, Prompts(), find_task("half_cheetah_backward"), LoopConfig(repair_attempts=1))
    candidate = designer.design(_brief(), 2, 1, tmp_path / "c1")
    assert candidate.status == "failed_check"
    assert candidate.code is None
    assert "not Python" in candidate.message


# --- whole runs through a chat-completions server --------------------------------


@pytest.mark.slow
def test_a_run_designs_repairs_reviews_trains_analyses_and_scores_through_a_chat_server(workspace):
    flags = ["run", "cheetah_back_short", "--tasks-dir", "tasks", *RUN_FLAGS, "--vlm-model", "test-vision"]
    with ChatServer(responder=persona) as server:
        output = run_cli_to_end(flags, server.url, workspace)
    run = the_run(workspace)
    # A vision model is named, so the analyzer watched: six frames of the best's video, through that model;
    # nothing else was sent an image.
    (analysis,) = [r for r in server.requests if text_of(r["messages"][-1]["content"]).startswith("A policy was")]
    parts = analysis["messages"][-1]["content"]
    assert analysis["model"] == "test-vision" and sum(p["type"] == "image_url" for p in parts) == 6
    assert "After this text come 6 frames" in text_of(parts)
    others = [r for r in server.requests if r is not analysis]
    assert all(isinstance(m["content"], str) for r in others for m in r["messages"] if m["role"] == "user")
    assert {r["model"] for r in others} == {"test-model"}
    candidates = candidates_of(run)
    assert set(candidates) == {"r1c0", "r1c1", "r2c0", "r2c1"}
    repaired, reviewed, improved, dropped = (candidates[k] for k in ("r1c0", "r1c1", "r2c0", "r2c1"))
    assert [a.check.category.value for a in repaired.attempts] == [
        "not_vectorized",
        "ok",
    ] and repaired.status == "trained"
    assert [a.critique.verdict for a in reviewed.attempts] == ["reject", "accept"] and reviewed.status == "trained"
    assert improved.status == "trained" and dropped.status == "failed_check"
    # No prompt ever shows the task's fitness: neither its expression nor its description.
    for request in server.requests:
        for message in request["messages"]:
            assert "-(next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt" not in message["content"]
            assert "mean velocity along -x, m/s" not in message["content"]
    # The round-2 designer saw the best program, its feedback (with the analyzer's reading) and the lessons.
    round_two = [
        r["messages"][1]["content"]
        for r in server.requests
        if len(r["messages"]) > 1 and "The best reward so far" in r["messages"][1]["content"]
    ]
    assert round_two and "raise the weight of the velocity term" in round_two[0]
    assert "r1c1" in round_two[0] or "r1c0" in round_two[0]  # a lesson about the candidate that was not best
    assert "its policy: episodes of" in round_two[0] and "ended early" in round_two[0]  # what it did, in a line
    critic_call = (run / "calls" / "r1__c1__critic0.md").read_text()
    assert critic_call.split("## reply")[1].strip().startswith("VERDICT: REJECT")
    final = read_json(run / "final" / "final.json")
    assert final["seeds"] == [0, 1] and len(final["scores"]) == 2
    report = (run / "export" / "reward_report.md").read_text()
    assert "Human-normalized score" in report
    # The Markdown report shows each trained policy's summary, what the reward reads (and feeds) included.
    assert "What its policy did on held-out episodes:" in report and "read by the reward" in report
    assert "feeds: backward" in report
    exported = (run / "export" / "reward.py").read_text()
    assert candidates[final["candidate_id"]].code.strip() in exported and run.name in exported
    with sqlite3.connect(run / "index.sqlite") as db:
        assert db.execute("SELECT status FROM run").fetchone() == ("finished",)
        assert db.execute("SELECT COUNT(*) FROM candidate").fetchone() == (4,)
        tokens = db.execute("SELECT SUM(prompt_tokens) FROM llm_call").fetchone()[0]
    # Five replies held code (the persona counts 900 prompt tokens for those, 11 for the others).
    assert tokens == 900 * 5 + 11 * (len(server.requests) - 5)
    assert "best reward" in output

    # Nothing the run wrote holds the API key, logs and worker files included.
    for path in run.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path

    # The table of runs and the report of this one.
    wide = dict(os.environ, COLUMNS="250")
    listing = subprocess.run(
        [sys.executable, "-m", "autoreward", "runs"], cwd=workspace, capture_output=True, text=True, env=wide
    )
    assert run.name in listing.stdout and "finished" in listing.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "autoreward", "show", str(run)], capture_output=True, text=True, env=wide
    )
    assert "Round 2" in shown.stdout and "rejected by the critic" not in shown.stdout  # r1c1 was repaired, not dropped
    assert "critic: reject: the reward is the velocity along +x" in shown.stdout


@pytest.mark.slow
def test_pre_screening_skips_training_a_candidate_that_reverses_the_task(workspace):
    # Pre-screening is off by default. It drops only at p < 0.01 over the distinct episodes less one, which
    # takes at least 8 of them: five held-out episodes of each of round 1's two candidates.
    flags = [*RUN_FLAGS, "--final-seeds", "1", "--prescreen", "--eval-episodes", "5"]
    with ChatServer(responder=persona_with_a_reversed_candidate) as server:
        run_cli_to_end(["run", "cheetah_back_short", "--tasks-dir", "tasks", *flags], server.url, workspace)
    run = the_run(workspace)
    candidates = candidates_of(run)
    reversed_one, good_one = candidates["r2c1"], candidates["r2c0"]
    assert reversed_one.status == "prescreened_out" and reversed_one.training is None
    assert reversed_one.screening_agreement < 0.5 < good_one.screening_agreement
    assert "task score" in reversed_one.message and "p = " in reversed_one.message
    assert not (run / "round_2" / "r2c1" / "training").exists()
    assert read_json(run / "round_2" / "round.json")["steps_saved"] == 512
    assert "Pre-screening saved 512 training steps" in (run / "export" / "reward_report.md").read_text()


@pytest.mark.slow
def test_mpc_prescreening_previews_each_candidate_and_trains_the_best_previews_first(workspace):
    # Round 2's second candidate rewards running the wrong way (the critic misses it): its preview runs forward,
    # so with half of each round's previews trained it is the one not trained.
    flags = [*RUN_FLAGS, "--final-seeds", "1", "--mpc-prescreen", "--mpc-keep", "0.5"]
    with ChatServer(responder=persona_with_a_reversed_candidate) as server:
        output = run_cli_to_end(["run", "cheetah_back_short", "--tasks-dir", "tasks", *flags], server.url, workspace)
    run = the_run(workspace)
    candidates = candidates_of(run)
    good, reversed_one = candidates["r2c0"], candidates["r2c1"]
    assert good.preview_score > 0 > reversed_one.preview_score  # the task is to run towards -x
    assert reversed_one.status == "prescreened_out" and reversed_one.training is None
    assert "its preview's task score" in reversed_one.message and "--mpc-keep 0.5" in reversed_one.message
    assert good.status == "trained" and (run / "round_2" / "r2c0" / "preview" / "preview.json").is_file()
    # Round 1: both previewed, the better one trained, the other not.
    first = [candidates["r1c0"], candidates["r1c1"]]
    assert sorted(c.status for c in first) == ["prescreened_out", "trained"]
    trained = next(c for c in first if c.status == "trained")
    assert trained.preview_score == max(c.preview_score for c in first)
    assert "previews, best first:" in output
    assert read_json(run / "round_2" / "round.json")["steps_saved"] == 512


def test_mpc_prescreening_is_refused_in_one_sentence_where_there_is_nothing_to_preview(workspace):
    from typer.testing import CliRunner

    from autoreward.cli import app

    transcript = workspace / "none.md"
    transcript.write_text("<!-- reply r1/c0/designer -->\nno\n")
    common = ["--llm", "replay", "--transcript", str(transcript), "--runs-dir", str(workspace / "runs")]
    no_model = CliRunner().invoke(app, ["run", "mountain_car_quick", "--mpc-prescreen", *common])
    assert no_model.exit_code == 2 and "has no MuJoCo model, and a preview plans on one" in no_model.output
    nothing = CliRunner().invoke(
        app, ["run", "cheetah_back_short", "--tasks-dir", str(workspace / "tasks"), "--mpc-keep", "0", *common]
    )
    assert nothing.exit_code == 2 and "--mpc-keep is the share of a round's previews trained" in nothing.output
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


@pytest.mark.slow
def test_a_task_given_in_words_has_its_best_reward_chosen_by_a_judge(workspace):
    flags = [
        "run",
        "--env",
        "HalfCheetah-v5",
        "Run backwards, towards -x.",
        "--rounds",
        "1",
        "--candidates",
        "2",
        "--repairs",
        "1",
        "--final-seeds",
        "1",
        "--steps",
        "512",
        "--envs",
        "2",
        "--eval-episodes",
        "1",
    ]
    with ChatServer(responder=persona) as server:
        run_cli_to_end(flags, server.url, workspace)
        asked = [r["messages"][-1]["content"] for r in server.requests]
        judged = [content for content in asked if text_of(content).startswith("Several reward functions")]
    assert len(judged) == 1 and "## r1c0" in text_of(judged[0])
    # A task without a score is judged by watching: six frames of each policy's video.
    assert sum(part["type"] == "image_url" for part in judged[0]) == 12
    (run,) = (workspace / "runs").glob("halfcheetah_v5__run_backwards*")
    assert read_json(run / "round_1" / "round.json")["best_so_far_id"] == "r1c1"
    final = read_json(run / "final" / "final.json")
    assert final["candidate_id"] == "r1c1" and final["fitness_mean"] is None
    assert "chosen by an LLM judge" in (run / "export" / "reward_report.md").read_text()
    assert (run / "export" / "reward.py").exists()


def test_a_run_whose_server_is_down_stops_with_one_sentence_and_can_be_resumed(workspace):
    flags = ["run", "cheetah_back_short", "--tasks-dir", "tasks", "--llm-attempts", "2", *RUN_FLAGS]
    process = start_cli(flags, "http://127.0.0.1:9/v1", workspace)
    output, _ = process.communicate(timeout=200)
    assert process.returncode == 2
    output = " ".join(output.split())  # rich wraps long lines
    assert "could not be reached after 2 attempts" in output and "Traceback" not in output
    run = the_run(workspace)
    assert f"autoreward run --resume {run.relative_to(workspace)}" in output
    assert read_json(run / "config.json")["llm"]["base_url"] == "http://127.0.0.1:9/v1"


@pytest.mark.slow  # a one-round run, stopped and resumed: about 45 s
def test_a_person_who_does_not_answer_in_time_stops_the_run_and_their_later_choice_is_used_on_resume(workspace):
    flags = [
        "run",
        "cheetah_back_short",
        "--tasks-dir",
        "tasks",
        *ONE_ROUND_FLAGS,
        "--feedback",
        "human",
        "--preference-timeout",
        "1",
    ]
    with ChatServer(responder=persona) as server:
        process = start_cli(flags, server.url, workspace)
        output, _ = process.communicate(timeout=400)
        assert process.returncode == 2, output
        output = " ".join(output.split())  # rich wraps long lines
        assert "no preference for round 1 came within 1 s" in output and "Traceback" not in output
        run = the_run(workspace)
        assert f"autoreward run --resume {run.relative_to(workspace)}" in output
        with sqlite3.connect(run / "index.sqlite") as db:
            assert db.execute("SELECT status FROM run").fetchone() == ("stopped: no preference for round 1 within 1 s",)
        store = RunStore.open(run)
        assert not (run / "final").exists()
        # The person answers later, preferring the candidate the task's score ranks lower.
        shown = store.load_preference_request(1).candidate_ids
        chosen = min(shown, key=lambda key: _trained(run)[key])
        store.save_preference(Preference(round=1, best_id=chosen, candidate_ids=shown))
        run_cli_to_end(["run", "--resume", str(run.relative_to(workspace))], server.url, workspace)
    assert read_json(run / "round_1" / "round.json")["best_so_far_id"] == chosen
    assert read_json(run / "final" / "final.json")["candidate_id"] == chosen


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _trained(run: Path) -> dict[str, float]:
    return {k: c.fitness for k, c in candidates_of(run).items() if c.status == "trained"}


@pytest.mark.slow
def test_a_run_killed_mid_training_resumes_to_the_same_result_without_repeating_work(workspace, tmp_path):
    flags = ["run", "cheetah_back_short", "--tasks-dir", "tasks", *RUN_FLAGS, "--workers", "1"]
    reference_space = tmp_path / "reference"
    reference_space.mkdir()
    (reference_space / "tasks").mkdir()
    (reference_space / "tasks" / "cheetah_back_short.toml").write_text(SHORT_TASK)
    with ChatServer(responder=persona) as server:
        run_cli_to_end(flags, server.url, reference_space)
    reference = the_run(reference_space)

    with ChatServer(responder=persona) as server:
        process = start_cli(flags, server.url, workspace, start_new_session=True)
        _wait_for(
            lambda: (workspace / "runs").exists() and any(_trained(r) for r in (workspace / "runs").iterdir()),
            300,
            "a first trained candidate",
        )
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        run = the_run(workspace)
        finished_before = {k: (run / f"round_1/{k}/training/training.json").stat().st_mtime_ns for k in _trained(run)}
        requests_before = len(server.requests)
        assert not (run / "final" / "final.json").exists()

        output = run_cli_to_end(["run", "--resume", str(run.relative_to(workspace))], server.url, workspace)

        requests = [json.dumps(r, sort_keys=True) for r in server.requests]
        assert len(requests) == len(set(requests)), "an LLM call was made twice"
        assert len(requests) > requests_before
    for key, stamp in finished_before.items():  # trained before the kill, not trained again
        assert (run / f"round_1/{key}/training/training.json").stat().st_mtime_ns == stamp
    assert _trained(run) == _trained(reference)  # the same candidates, with the same scores
    final, expected = read_json(run / "final" / "final.json"), read_json(reference / "final" / "final.json")
    assert (final["candidate_id"], final["fitness"]) == (expected["candidate_id"], expected["fitness"])
    assert "best reward" in output


@pytest.mark.slow
def test_the_manual_backend_lets_a_person_answer_from_another_terminal(workspace):
    """One process runs; this test, as the other terminal, answers each prompt file as it appears."""
    answers = {
        "r1__c0__designer": "Reward speed towards -x.\n\n```python" + persona_code(1.0) + "```\n",
        "r1__c0__analyzer": "- it runs backwards, slowly",
    }
    flags = [
        "run",
        "cheetah_back_short",
        "--tasks-dir",
        "tasks",
        "--llm",
        "manual",
        "--rounds",
        "1",
        "--candidates",
        "1",
        "--no-critic",
        "--final-seeds",
        "1",
    ]
    process = start_cli(flags, "http://127.0.0.1:9/v1", workspace)  # the URL is never used by the manual backend
    answered = []
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        for prompt in (workspace / "runs").glob("*/manual/*.prompt.md"):
            name = prompt.name.removesuffix(".prompt.md")
            if name not in answered:
                assert "Task: Make the half cheetah run backwards" in prompt.read_text() or name.endswith("analyzer")
                (prompt.parent / f"{name}.answer.md").write_text(answers[name])
                answered.append(name)
        time.sleep(0.2)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    # One round: its best's analysis would feed no round, so the person is not asked for it (issue 13).
    assert answered == ["r1__c0__designer"]
    run = the_run(workspace)
    assert candidates_of(run)["r1c0"].status == "trained"
    assert "prompt written to" in " ".join(output.split())


def persona_code(scale: float) -> str:
    from .llm_persona import BACKWARD

    return BACKWARD.format(scale=scale, effort=0.1)


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "half_cheetah_backward", "--llm", "bogus"], "--llm must be openai, replay or manual"),
        (["run", "--resume", "no_such_run"], "is not a run folder"),
        (["run", "half_cheetah_backward", "--llm", "replay"], "needs a transcript file"),
        (
            ["run", "half_cheetah_backward", "--llm", "replay", "--transcript", "missing.md"],
            "cannot read the transcript",
        ),
        (["export", "no_such_run"], "is not a run folder"),
        (["show", "no_such_run"], "is not a run folder"),
        (["run", "half_cheetah_backward", "--steps", "0"], "--steps must be at least 1"),
        (
            ["run", "half_cheetah_backward", "--feedback", "votes"],
            "--feedback must be fitness, human, synthetic, llm or vlm",
        ),
        (["run", "half_cheetah_backward", "--simulator", "bogus"], "--simulator must be gymnasium, batched or warp"),
        (["run", "half_cheetah_backward", "--device", "gpu"], "--device must be cpu, cuda or cuda:N"),
        (
            ["run", "half_cheetah_backward", "--executor", "ray", "--device", "cuda:1"],
            "on a Ray cluster give --device cuda",
        ),
        (
            ["run", "--env", "Hopper-v5", "hop in place", "--feedback", "synthetic"],
            "has none; use --feedback human or llm",
        ),
        (["run", "half_cheetah_backward", "--halving", "--halving-eta", "1"], "--halving-eta"),
        (
            ["run", "half_cheetah_backward", "--halving", "--feedback", "human"],
            "--halving ranks its rungs by the task score",
        ),
        (
            ["run", "half_cheetah_backward", "--confirm-seeds", "1", "--feedback", "human"],
            "--confirm-seeds picks a round's best by its task score over more seeds",
        ),
        (
            ["run", "half_cheetah_backward", "--forms", "reward,counts"],
            "--forms names reward forms, each once, from reward, progress, latent; got reward,counts",
        ),
        (
            ["run", "--env", "Hopper-v5", "hop in place", "--form", "latent", "--score", "judged"],
            "has no task score ([fitness]), and the latent form trains on it",
        ),
        (
            ["run", "half_cheetah_backward", "--analyzer-frames", "--no-videos"],
            "--analyzer-frames shows the analyzer frames of the best policy's video, which --no-videos turns off",
        ),
    ],
)
def test_bad_command_lines_get_one_sentence_and_leave_no_run_behind(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "autoreward", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, COLUMNS="250", OPENAI_API_KEY=SECRET),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
