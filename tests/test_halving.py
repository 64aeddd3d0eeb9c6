"""Successive halving: the schedule, the pick at each rung, training in slices, and a run that halves its rounds."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest

from autoreward.config import TrainingConfig
from autoreward.errors import WorkerError
from autoreward.loop.evaluation import EVALUATION_SEED_BASE
from autoreward.loop.halving import (
    Rung,
    planned_steps,
    rung_score,
    schedule,
    slice_folder,
    successive_halving,
    survivors,
    train_slice,
)
from autoreward.loop.runner import Runner
from autoreward.records import Attempt, Candidate, RoundResult
from autoreward.serialize import from_dict, read_json, to_dict

from .conftest import human_reward

# --- the schedule ------------------------------------------------------------------


def test_six_candidates_halve_to_one_over_three_rungs_and_spend_under_half_the_steps():
    rungs = schedule(6, 64_000, eta=2)
    assert rungs == (Rung(16_000, 6), Rung(32_000, 3), Rung(64_000, 1))
    # 6 x 16k, then 3 go on by 16k, then 1 by 32k
    assert planned_steps(rungs) == 6 * 16_000 + 3 * 16_000 + 32_000 == 176_000
    assert 6 * 64_000 / planned_steps(rungs) > 2


@pytest.mark.parametrize(
    "candidates, eta, counts, fractions",
    [
        (5, 2, [5, 2, 1], [4, 2, 1]),  # 5 // 2 = 2: the odd one is stopped, not kept
        (7, 3, [7, 2, 1], [9, 3, 1]),
        (4, 3, [4, 1], [3, 1]),
        (3, 2, [3, 1], [2, 1]),
        (8, 2, [8, 4, 2, 1], [8, 4, 2, 1]),
    ],
)
def test_candidate_counts_that_eta_does_not_divide_round_down_and_the_last_rung_has_the_whole_budget(
    candidates, eta, counts, fractions
):
    rungs = schedule(candidates, 90_000, eta)
    assert [r.candidates for r in rungs] == counts
    assert [r.steps for r in rungs] == [90_000 // f for f in fractions]


def test_one_candidate_is_trained_whole_and_none_needs_no_rung():
    assert schedule(1, 50_000) == (Rung(50_000, 1),)
    assert planned_steps(schedule(1, 50_000)) == 50_000
    assert schedule(0, 50_000) == ()
    with pytest.raises(ValueError, match="at least 2"):
        schedule(4, 50_000, eta=1)


def test_the_best_survive_in_their_order_ties_go_to_the_earlier_and_no_score_never_survives():
    assert survivors([1.0, 3.0, 3.0, None, 2.0], 2) == [1, 2]
    assert survivors([1.0, 3.0, 3.0, None, 2.0], 1) == [1]  # the tie goes to the earlier
    assert survivors([1.0, 3.0, 3.0, None, 2.0], 2, higher_is_better=False) == [0, 4]
    assert survivors([None, None, 5.0], 2) == [2]


# --- the driver, over a scripted training --------------------------------------------


def _candidate(index: int) -> Candidate:
    return Candidate(id=f"r1c{index}", round=1, index=index, status="ready", attempts=(Attempt(0, "code"),))


def _scripted(scores: dict[tuple[str, int], float | None], calls: list):
    """A TrainSlice whose task score at each (candidate, steps) comes from `scores`; None: its worker fails."""
    from autoreward.records import Evaluation, TrainingResult

    lock = threading.Lock()

    def train_slice(candidate: Candidate, start, until: int) -> Candidate:
        with lock:
            calls.append((candidate.id, start, until))
        score = scores[(candidate.id, until)]
        if score is None:
            return replace(candidate, status="training_failed", message="the worker crashed")
        evaluation = Evaluation(episodes=(), fitness_mean=score, fitness_std=0.0, length_mean=1.0, success_rate=None)
        training = TrainingResult("t", "program", "ppo", until, 0, 1, (), evaluation, 1.0, 1.0)
        return replace(candidate, status="trained", training=training)

    return train_slice


def test_weak_candidates_are_stopped_with_their_step_and_only_survivors_train_on():
    candidates = [_candidate(i) for i in range(5)]
    # c3 is slow at first but would have been best: halving stops it anyway (the price of the method).
    scores = {
        ("r1c0", 100): 1.0,
        ("r1c1", 100): 4.0,
        ("r1c2", 100): 4.0,
        ("r1c3", 100): 0.5,
        ("r1c4", 100): None,
        ("r1c1", 200): 5.0,
        ("r1c2", 200): 6.0,
        ("r1c2", 400): 7.0,
    }
    calls, recorded = [], []
    rungs = (Rung(100, 5), Rung(200, 2), Rung(400, 1))
    ended = successive_halving(candidates, rungs, _scripted(scores, calls), workers=2, record=recorded.append)
    assert [c.id for c in ended] == [c.id for c in candidates]
    by_id = {c.id: c for c in ended}
    assert [(k, c.status, c.stopped_at) for k, c in by_id.items()] == [
        ("r1c0", "trained", 100),
        ("r1c1", "trained", 200),
        ("r1c2", "trained", None),
        ("r1c3", "trained", 100),
        ("r1c4", "training_failed", None),
    ]
    assert by_id["r1c2"].fitness == 7.0 and by_id["r1c1"].fitness == 5.0 and by_id["r1c0"].fitness == 1.0
    assert "stopped by successive halving after 100 steps" in by_id["r1c3"].message
    assert sorted(c.id for c in recorded) == ["r1c0", "r1c1", "r1c3"]  # recorded as soon as stopped
    # Each slice continues the previous rung's; no candidate is trained past its rung.
    assert sorted(calls, key=str) == sorted(
        [(f"r1c{i}", None, 100) for i in range(5)] + [("r1c1", 100, 200), ("r1c2", 100, 200), ("r1c2", 200, 400)],
        key=str,
    )


def _trained(
    index: int,
    held_out: float,
    curve: list[tuple[int, int, float | None, bool]],
    steps: int = 100,
    exploring: float | None = None,
):
    """A trained candidate whose curve points are (step, episodes, fitness, partial)."""
    from autoreward.records import CurvePoint, Evaluation, TrainingResult

    points = tuple(
        CurvePoint(step, 1.0, 1.0, 0.0, {}, episodes, None, fitness, partial)
        for step, episodes, fitness, partial in curve
    )
    evaluation = Evaluation(
        episodes=(),
        fitness_mean=held_out,
        fitness_std=0.0,
        length_mean=1.0,
        success_rate=None,
        exploring_fitness_mean=exploring,
    )
    return replace(
        _candidate(index),
        status="trained",
        training=TrainingResult("t", "program", "ppo", steps, 0, 1, points, evaluation, 1.0, 1.0),
    )


def test_a_rung_ranks_by_the_exploring_score_the_evaluation_worker_played_not_the_training_workers_curve():
    # c0's training worker says its episodes scored 1e9 (forged, or a reward that got out of the restricted
    # Python); the evaluation worker, which runs no candidate code, saw c1 explore better.
    c0 = _trained(0, 0.003, [(50, 10, 1e9, False), (100, 10, 1e9, False)], exploring=0.1)
    c1 = _trained(1, 0.001, [(50, 10, 0.2, False), (100, 10, 0.3, False)], exploring=0.4)
    assert (rung_score(c0), rung_score(c1)) == (0.1, 0.4)
    ended = successive_halving(
        [c0, c1],
        schedule(2, 200),
        lambda c, start, until: (
            {0: c0, 1: c1}[c.index] if until == 100 else replace(c, training=replace(c.training, steps=until))
        ),
    )
    assert [c.stopped_at for c in ended] == [100, None]
    assert "exploring policy's task score 0.1 was not among the best 1 of 2" in ended[0].message


def test_a_slice_recorded_before_the_split_ranks_by_its_training_episodes_late_in_the_slice():
    # The held-out scores (deterministic policies standing still) say c0; the training episodes say c1.
    c0 = _trained(0, 0.003, [(25, 10, 0.9, False), (50, 10, 0.1, False), (100, 10, 0.1, False)])
    c1 = _trained(1, 0.001, [(25, 10, 0.0, False), (75, 30, 0.4, False), (100, 10, 0.2, False)])
    assert rung_score(c0) == pytest.approx(0.1)  # the early 0.9 is before the slice's second half
    assert rung_score(c1) == pytest.approx((0.4 * 30 + 0.2 * 10) / 40)  # weighted by episodes
    # No episode ended late: the last score of running episodes; no curve score at all: the held-out one.
    assert rung_score(_trained(2, 0.5, [(60, 0, 0.3, True), (100, 0, 0.7, True)])) == 0.7
    assert rung_score(_trained(3, 0.5, [(100, 0, None, False)])) == 0.5
    assert rung_score(replace(c0, status="training_failed", training=None)) is None

    ended = successive_halving(
        [c0, c1],
        schedule(2, 200),
        lambda c, start, until: (
            {0: c0, 1: c1}[c.index] if until == 100 else replace(c, training=replace(c.training, steps=until))
        ),
    )
    assert [c.stopped_at for c in ended] == [100, None]
    assert "exploring policy's task score 0.1 was not among the best 1 of 2" in ended[0].message


def test_a_lower_is_better_score_keeps_the_lowest():
    candidates = [_candidate(i) for i in range(2)]
    scores = {("r1c0", 50): 3.0, ("r1c1", 50): 1.0, ("r1c1", 100): 0.5}
    ended = successive_halving(candidates, schedule(2, 100), _scripted(scores, []), higher_is_better=False)
    assert [(c.stopped_at, c.fitness) for c in ended] == [(50, 3.0), (None, 0.5)]


# --- records written before halving existed still read --------------------------------


def test_records_without_halving_fields_read_with_defaults_and_round_trip():
    old = to_dict(_candidate(0))
    del old["stopped_at"]
    assert from_dict(Candidate, old).stopped_at is None
    stopped = replace(_candidate(1), status="trained", stopped_at=16_000)
    assert from_dict(Candidate, json.loads(json.dumps(to_dict(stopped)))) == stopped
    old_round = {
        "round": 1,
        "candidate_ids": ["r1c0"],
        "best_id": None,
        "best_so_far_id": None,
        "feedback": None,
        "lessons": [],
        "steps_saved": 512,
    }
    result = from_dict(RoundResult, old_round)
    assert (result.steps_saved, result.steps_trained, result.halving_steps_saved) == (512, 0, 0)


# --- real training in slices -----------------------------------------------------------

SLICED = TrainingConfig(steps=1024, n_envs=2, eval_episodes=2, curve_points=4)


@pytest.mark.slow
def test_a_slice_continued_to_the_budget_has_the_total_steps_and_one_cumulative_curve(cheetah, tmp_path, jail):
    code = human_reward(cheetah)
    started = []
    first = train_slice(
        cheetah,
        SLICED,
        tmp_path,
        code,
        None,
        512,
        runner=Runner.connect(jail=jail),
        on_start=lambda: started.append(512),
    )
    assert first.steps == 512 and [p.step for p in first.curve] == [256, 512]
    assert (tmp_path / "training_512" / "learner" / "policy.zip").exists()
    assert first.evaluation.exploring_fitness_mean is not None  # what its rung is ranked by

    whole = train_slice(
        cheetah,
        SLICED,
        tmp_path,
        code,
        512,
        1024,
        runner=Runner.connect(jail=jail),
        on_start=lambda: started.append(1024),
    )
    assert whole.steps == 1024 and whole.evaluation.exploring_fitness_mean is None  # no rung ranks the last slice
    assert [p.step for p in whole.curve] == [256, 512, 768, 1024]
    assert whole.curve[:2] == first.curve  # the first slice's points, kept as they were
    assert whole.wall_seconds > first.wall_seconds
    assert [e.seed for e in whole.evaluation.episodes] == [EVALUATION_SEED_BASE, EVALUATION_SEED_BASE + 1]
    folder = slice_folder(tmp_path, 1024, 1024)
    assert folder == tmp_path / "training" and not (folder / "learner" / "start").exists()
    assert len((folder / "learner" / "curve.jsonl").read_text().splitlines()) == 4

    # Read first: a finished slice is not trained again.
    again = train_slice(
        cheetah,
        SLICED,
        tmp_path,
        code,
        512,
        1024,
        runner=Runner.connect(jail=jail),
        on_start=lambda: started.append("again"),
    )
    assert again == whole and started == [512, 1024]


@pytest.mark.slow
def test_a_slice_that_ends_between_curve_points_ends_with_a_point_of_its_own(cheetah, tmp_path, jail):
    code = human_reward(cheetah)
    first = train_slice(cheetah, SLICED, tmp_path, code, None, 384, runner=Runner.connect(jail=jail))
    # Points every 256 steps; the slice's last 128 steps are a window of their own, kept for the rung's ranking.
    assert [p.step for p in first.curve] == [256, 384] and first.curve[-1].fitness is not None
    whole = train_slice(cheetah, SLICED, tmp_path, code, 384, 1024, runner=Runner.connect(jail=jail))
    assert [p.step for p in whole.curve] == [256, 384, 512, 768, 1024]


def test_a_failed_slice_is_recorded_and_not_retried(cheetah, tmp_path, jail):
    code = (
        "import numpy as np\n"
        "def compute_reward(state, action, next_state):\n"
        "    if np.any(next_state.time > 0.2):\n"
        "        raise ValueError('this reward breaks late')\n"
        "    v = next_state.qpos[:, 0]\n"
        "    return v, {'v': v}\n"
    )
    with pytest.raises(WorkerError, match="this reward breaks late"):
        train_slice(cheetah, SLICED, tmp_path, code, None, 512, runner=Runner.connect(jail=jail))
    with pytest.raises(WorkerError, match="this reward breaks late"):
        train_slice(
            cheetah,
            SLICED,
            tmp_path,
            code,
            None,
            512,
            runner=Runner.connect(jail=jail),
            on_start=lambda: pytest.fail("retried"),
        )


def test_continuing_from_a_folder_where_nothing_finished_says_so(cheetah, tmp_path):
    from autoreward.loop.training import train

    with pytest.raises(ValueError, match="no training finished there"):
        train(
            cheetah,
            SLICED,
            tmp_path / "b",
            human_reward(cheetah),
            until=1024,
            resume_from=tmp_path / "a",
            runner=Runner.connect(),
        )


# --- a run with halving, through the loopback chat server --------------------------------


@pytest.mark.slow
def test_a_run_with_halving_records_stopped_candidates_and_the_steps_it_saved(tmp_path):
    from .chat_server import ChatServer
    from .conftest import ONE_ROUND_FLAGS, SHORT_TASK, candidates_of, run_cli_to_end, the_run
    from .llm_persona import persona

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cheetah_back_short.toml").write_text(SHORT_TASK)
    flags = [
        "run",
        "cheetah_back_short",
        "--tasks-dir",
        "tasks",
        *ONE_ROUND_FLAGS,
        "--halving",
        "--simulator",
        "batched",
    ]
    with ChatServer(responder=persona) as server:
        output = run_cli_to_end(flags, server.url, tmp_path)
    run = the_run(tmp_path)
    candidates = candidates_of(run)
    assert {c.status for c in candidates.values()} == {"trained"}
    (stopped,) = [c for c in candidates.values() if c.stopped_at is not None]
    (kept,) = [c for c in candidates.values() if c.stopped_at is None]
    assert stopped.stopped_at == 256 and stopped.training.steps == 256 and kept.training.steps == 512
    assert (run / "round_1" / stopped.id / "training_256" / "training.json").exists()
    assert not (run / "round_1" / stopped.id / "training").exists()
    assert (run / "round_1" / kept.id / "training" / "training.json").exists()
    jobs = list(run.glob("round_1/*/training*/learner/job.json"))
    assert len(jobs) == 3  # two slices at 256 steps, one continued to 512
    for job in jobs:  # every slice on the run's simulator
        assert json.loads(job.read_text())["payload"]["config"]["simulator"] == "batched", job
    round_one = read_json(run / "round_1" / "round.json", RoundResult)
    assert round_one.best_id == kept.id and round_one.halving_steps_saved == 256
    assert round_one.steps_trained == 512 + 256 and round_one.steps_saved == 0
    report = (run / "export" / "reward_report.md").read_text()
    assert "stopped early at 256 steps" in report and "Successive halving saved 256 training steps" in report
    assert "successive halving of 2 candidates" in " ".join(output.split())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_run_killed_mid_rung_resumes_without_training_a_finished_slice_again(tmp_path):
    import os
    import signal
    import time

    from .chat_server import ChatServer
    from .conftest import SHORT_TASK, candidates_of, run_cli_to_end, start_cli, the_run
    from .llm_persona import persona

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cheetah_back_short.toml").write_text(SHORT_TASK)
    flags = [
        "run",
        "cheetah_back_short",
        "--tasks-dir",
        "tasks",
        "--rounds",
        "1",
        "--candidates",
        "2",
        "--repairs",
        "1",
        "--final-seeds",
        "1",
        "--workers",
        "1",
        "--halving",
    ]
    with ChatServer(responder=persona) as server:
        process = start_cli(flags, server.url, tmp_path, start_new_session=True)
        deadline = time.monotonic() + 400
        # Killed as soon as the first slice of rung 0 has finished: one worker, so the second is under way.
        while not list(tmp_path.glob("runs/*/round_1/*/training_256/training.json")):
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        run = the_run(tmp_path)
        (finished_before,) = [p.parent.parent.name for p in run.glob("round_1/*/training_256/training.json")]
        run_cli_to_end(["run", "--resume", str(run.relative_to(tmp_path))], server.url, tmp_path)

    candidates = candidates_of(run)
    assert {c.status for c in candidates.values()} == {"trained"}
    assert sorted(c.stopped_at for c in candidates.values() if c.stopped_at) == [256]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.endswith("}")]
    started = [(e["candidate"], e.get("until")) for e in events if e["event"] == "training started"]
    finished = [(e["candidate"], e.get("until")) for e in events if e["event"] == "training finished"]
    assert len(finished) == len(set(finished))  # none ran to its end twice
    assert started.count((finished_before, 256)) == 1  # the slice done before the kill was read, not run again
    # (Its "training finished" may be missing: the kill can land between the worker's last write and the log's.)
    slices = sorted(p.parent.relative_to(run).as_posix() for p in run.glob("round_1/*/training*/training.json"))
    kept = next(c.id for c in candidates.values() if c.stopped_at is None)
    assert slices == sorted(["round_1/r1c0/training_256", "round_1/r1c1/training_256", f"round_1/{kept}/training"])
    assert (run / "final" / "final.json").exists()
