"""A task given in words gets a score: the LLM proposes one, it is checked on real states, a person (or
--accept-score) adopts it, and the run then has what a task file's fitness gives."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from autoreward.config import LoopConfig
from autoreward.contract.checker import check_proposed_score
from autoreward.llm.backends import OpenAIChat
from autoreward.llm.prompts import Prompts
from autoreward.loop.task_score import propose_task_score, scored_task, task_file_text
from autoreward.records import Preference, ScoreProposal
from autoreward.serialize import read_json
from autoreward.task.describe import describe_task
from autoreward.task.files import load_tasks, task_from_sentence

from .chat_server import ChatServer, Reply
from .conftest import ONE_ROUND_FLAGS, REPO, run_autoreward, start_cli
from .llm_persona import persona

BACKWARD_SCORE = """```toml
success_threshold = 1.0

[fitness]
step = "-(next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt"
reduce = "mean"
description = "mean velocity along -x, m/s"
```"""


def _propose(server: ChatServer, task, repairs: int = 2) -> ScoreProposal:
    llm = OpenAIChat("test-model", server.url, "key", max_attempts=1)
    config = LoopConfig(repair_attempts=repairs)
    return propose_task_score(llm, Prompts(), task, config, describe_task(task), check_proposed_score)


def test_a_proposed_score_is_asked_for_checked_on_real_states_and_repaired_after_garbage():
    task = task_from_sentence("HalfCheetah-v5", "Run backwards, towards -x.")
    script = [
        Reply("A good score would be the speed backwards."),  # no [fitness] at all
        Reply('```toml\n[fitness]\nstep = "next_state.bodies.tail.pos[:, 0]"\nreduce = "mean"\ndescription = "x"\n```'),
        Reply(BACKWARD_SCORE),
    ]
    with ChatServer(script) as server:
        proposal = _propose(server, task)
    first, second, third = (r["messages"] for r in server.requests)
    assert "Run backwards, towards -x." in first[0]["content"] and "class Bodies:" in first[0]["content"]
    assert "the reply has no ```toml block" in second[-1]["content"]
    # The score that raises on real states is sent back with the body it named and the bodies there are.
    assert "there is no body named 'tail'" in third[-1]["content"] and "torso" in third[-1]["content"]
    assert proposal.decision == "proposed" and proposal.problem is None
    assert proposal.fitness.reduce == "mean" and proposal.success_threshold == 1.0
    assert proposal.random_score != proposal.still_score


def test_a_score_that_cannot_tell_doing_nothing_from_moving_is_refused_in_one_sentence():
    task = task_from_sentence("Hopper-v5", "hop in place")
    constant = '```toml\n[fitness]\nstep = "np.ones(state.batch_size)"\nreduce = "mean"\ndescription = "one"\n```'
    with ChatServer([Reply(constant)]) as server:
        proposal = _propose(server, task, repairs=0)
    assert proposal.decision == "unusable" and proposal.fitness is None
    assert proposal.problem == (
        "the proposed score gives 1 both to random actions and to standing still, so it cannot tell a policy "
        "that does the task from one that does nothing"
    )


def test_a_score_with_fields_a_score_has_not_is_one_sentence():
    task = task_from_sentence("Hopper-v5", "hop in place")
    with pytest.raises(Exception, match="only 'success_threshold' and the \\[fitness\\] table belong in it"):
        scored_task(task, 'env = "Ant-v5"\n[fitness]\nstep = "1"\nreduce = "mean"\ndescription = "x"\n')
    with pytest.raises(Exception, match="field 'reduce' must be 'mean', 'sum' or 'last'"):
        scored_task(task, '[fitness]\nstep = "1"\nreduce = "median"\ndescription = "x"\n')


def test_a_task_with_its_score_written_as_a_file_reads_back_the_same(tmp_path):
    task = scored_task(task_from_sentence("HalfCheetah-v5", 'Run "backwards".'), BACKWARD_SCORE.strip("`toml\n"))
    (tmp_path / "task.toml").write_text(task_file_text(task, comment="proposed"))
    read = load_tasks([tmp_path])[task.id]
    assert (read.fitness, read.success_threshold, read.description) == (task.fitness, 1.0, 'Run "backwards".')


@pytest.mark.slow  # two rounds, a final seed and its two baselines: about a minute on two cores
def test_a_replayed_sentence_task_with_an_accepted_score_gets_prescreening_baselines_and_a_normalized_score(tmp_path):
    transcript = REPO / "tests" / "transcripts" / "sentence_task_score.md"
    flags = ["--rounds", "2", "--candidates", "2", "--repairs", "0", "--final-seeds", "1", "--workers", "2"]
    flags += ["--prescreen"]  # off by default
    budget = ["--steps", "512", "--envs", "2", "--eval-episodes", "2"]
    done = run_autoreward(
        "run",
        "--env",
        "HalfCheetah-v5",
        "Run backwards, towards -x.",
        "--score",
        "proposed",
        "--accept-score",
        "--llm",
        "replay",
        "--transcript",
        str(transcript),
        *flags,
        *budget,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = (tmp_path / "runs").glob("halfcheetah_v5__run_backwards*")
    proposal = read_json(run / "score_proposal.json", ScoreProposal)
    assert proposal.decision == "accepted" and proposal.decided_by.startswith("--accept-score")
    assert (run / "calls" / "score__proposal.md").read_text().count("mean velocity along -x") >= 1
    # The accepted score is the run's trusted fitness: round 2 is pre-screened, the final table has both baselines.
    # Each round-2 candidate was pre-screened; with four stored episodes of a short training no pair may differ
    # by the margin, so the verdict can be "no pairs" (agreement None) rather than an agreement.
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.endswith("}")]
    screened = {e["candidate"] for e in events if e.get("event") == "pre-screened"}
    assert screened == {"r2c0", "r2c1"}, events
    output = " ".join(done.stdout.split())
    assert "human (the environment's own reward) / sparse" in output, output
    assert "human-normalized" in output
    # Every stored episode is below the accepted score's success threshold: the pre-screen says so and drops none.
    assert output.count("kept: every stored episode is a failure, so their ranking is not trusted") == 2, output
    final = read_json(run / "final" / "final.json")
    assert final["sparse_fitness"] is not None and final["score_mean"] is not None
    # The designer never saw the score.
    for call in run.glob("calls/r*__designer.md"):
        assert 'rootx.qpos - state.joints.rootx.qpos) / state.dt"' not in call.read_text()
        assert "mean velocity along -x" not in call.read_text()
    report = (run / "export" / "reward_report.md").read_text()
    assert "**Proposed task score**, proposed by the LLM and accepted by --accept-score" in report
    assert 'reduce = "mean"' in report and "On one episode of random actions it scored" in report
    # The task with its score is a file to keep: `autoreward tasks --tasks-dir` lists it.
    listed = run_autoreward("tasks", "--tasks-dir", str(run), cwd=tmp_path)
    assert listed.returncode == 0 and "halfcheetah_v5__run_backwards" in listed.stdout, listed.stdout + listed.stderr


def test_score_flags_on_a_task_with_its_own_score_are_one_sentence(tmp_path):
    done = run_autoreward("run", "half_cheetah_backward", "--accept-score", "--llm", "replay", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--score and --accept-score are for a task given in words" in " ".join(done.stderr.split())
    assert not (tmp_path / "runs").exists()


def test_accept_score_with_score_judged_is_one_sentence(tmp_path):
    args = ["run", "--env", "Hopper-v5", "hop", "--score", "judged", "--accept-score", "--llm", "replay"]
    done = run_autoreward(*args, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--score judged asks for none" in " ".join(done.stderr.split())


EDIT_TO_SUM = """
import pathlib, sys
path = pathlib.Path(sys.argv[1])
path.write_text(path.read_text().replace('reduce = "mean"', 'reduce = "sum"'))
"""


def _designer_and_score(body: dict):
    last = body["messages"][-1]["content"]
    if isinstance(last, str) and last.startswith("A person wants a policy"):
        return Reply(BACKWARD_SCORE)
    return persona(body)


def _vision_judge(body: dict):
    repairs = sum(1 for m in body["messages"] if m["role"] == "assistant")
    if repairs == 0:
        return Reply("BEST: r9c9\n- it looks fastest")  # a name that was not shown
    return Reply("BEST: r1c1\nWORST: r1c0\n- r1c1's body moves left across the frames; r1c0 barely moves")


@pytest.mark.slow  # a one-round run of two candidates: about 40 s on two cores
def test_a_rejected_score_leaves_the_rounds_to_a_judge_that_watches_frames_of_each_video(workspace, monkeypatch):
    editor = workspace / "editor.py"
    editor.write_text(EDIT_TO_SUM)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    flags = ["run", "--env", "HalfCheetah-v5", "Run backwards, towards -x.", "--score", "proposed", *ONE_ROUND_FLAGS]
    flags += ["--steps", "512", "--envs", "2", "--eval-episodes", "1", "--vlm-model", "vision-model"]
    with ChatServer(responder=_designer_and_score) as designer, ChatServer(responder=_vision_judge) as vision:
        process = start_cli([*flags, "--vlm-base-url", vision.url], designer.url, workspace, stdin=subprocess.PIPE)
        output, _ = process.communicate("edit\nreject\n", timeout=400)
    assert process.returncode == 0, output
    (run,) = (workspace / "runs").glob("halfcheetah_v5__run_backwards*")
    # The person edited the score (checked again, and shown), then rejected it: the run has no task score.
    proposal = read_json(run / "score_proposal.json", ScoreProposal)
    assert proposal.decision == "rejected" and 'reduce = "sum"' in proposal.text and proposal.problem is None
    assert " ".join(output.split()).count("an episode of random actions scores") == 2
    assert read_json(run / "config.json")["task"]["fitness"] is None and not (run / "task.toml").exists()
    # The designer's server never saw an image; the vision model's got six frames of each policy, 160x120 PNGs.
    assert all(isinstance(m["content"], str) for r in designer.requests for m in r["messages"])
    first, repair = vision.requests
    assert first["model"] == "vision-model"
    parts = first["messages"][0]["content"]
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(images) == 12 and [p["text"] for p in parts if p["type"] == "text"][1] == "r1c0, frame 1 of 6"
    for url in images:
        png = base64.b64decode(url.removeprefix("data:image/png;base64,"))
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (160, 120)
    # The unknown name got one sentence and a repair request; the repaired answer decided the round.
    assert "names 'r9c9' as BEST, which is not one of the policies" in repair["messages"][-1]["content"]
    preference = read_json(run / "round_1" / "preference.json", Preference)
    assert (preference.best_id, preference.worst_id, preference.source) == ("r1c1", "r1c0", "vlm")
    assert (run / "round_1" / "r1c0" / "training" / "evaluation" / "frames" / "frame_5.png").is_file()
    # Recorded and cached by the frames' hashes and paths, never their bytes a second time.
    assert "frames/frame_0.png" in (run / "calls" / "r1__judge.md").read_text()
    assert not [p for p in run.glob("llm_cache/*/*.json") if "base64" in p.read_text()]
    # Both reports show the rejected score and the frames the judge saw, with its reasons.
    report = (run / "export" / "reward_report.md").read_text()
    assert "**Proposed task score**, rejected by a person at the terminal; the rounds were judged instead" in report
    assert "Frames the judge saw:" in report and "](round_1/r1c0/training/evaluation/frames/frame_0.png)" in report
    assert "r1c1's body moves left across the frames" in report
    page = (run / "report.html").read_text()
    assert 'src="round_1/r1c1/training/evaluation/frames/frame_5.png"' in page and "rejected by a person at the terminal" in page
