"""A run folder made of records alone (no training), for tests of the review page and of preferences."""

from __future__ import annotations

from pathlib import Path

from autoreward.config import Budget, LLMSettings, LoopConfig, RunConfig
from autoreward.loop.run_store import RunStore
from autoreward.records import (
    Attempt,
    Candidate,
    CheckCategory,
    CheckResult,
    ComponentStats,
    Critique,
    CurvePoint,
    Evaluation,
    TrainingResult,
)
from autoreward.task.files import find_task

HOSTILE = "<script>alert('owned')</script>"


def program(scale: float) -> str:
    return (
        "import numpy as np\n\ndef compute_reward(state, action, next_state):\n"
        f"    r = {scale} * action[:, 0]\n    return r, {{'r': r}}\n"
    )


def training(fitness: float) -> TrainingResult:
    curve = tuple(
        CurvePoint(
            step=256 * k,
            wall_seconds=k,
            steps_per_second=256.0,
            reward_mean=0.1 * k,
            components={"r": ComponentStats(0.1 * k, 0.0, 0.2 * k)},
            episodes=2,
            episode_length=40.0,
            fitness=fitness * k / 2,
        )
        for k in (1, 2)
    )
    evaluation = Evaluation(episodes=(), fitness_mean=fitness, fitness_std=0.01, length_mean=40.0, success_rate=None)
    return TrainingResult("half_cheetah_backward", "program", "ppo", 512, 0, 2, curve, evaluation, 2.0, 256.0)


def trained(round_number: int, index: int, fitness: float, explanation: str = "Reward the thigh.") -> Candidate:
    ok = CheckResult(CheckCategory.OK, "ok")
    attempts = (
        Attempt(0, program(index + 1.0), check=ok, critique=Critique("accept", ("fine",)), explanation=explanation),
    )
    return Candidate(f"r{round_number}c{index}", round_number, index, "trained", attempts, training=training(fitness))


def make_run(runs_dir: Path, name: str = "cheetah__design__s0__20260101-000000", feedback: str = "human") -> RunStore:
    config = RunConfig(
        run_id=name,
        task=find_task("half_cheetah_backward"),
        loop=LoopConfig(rounds=2, candidates=2, feedback=feedback, budget=Budget(steps=512)),
        llm=LLMSettings(),
        created="2026-01-01T00:00:00",
        autoreward_version="test",
    )
    store = RunStore.create(Path(runs_dir) / name, config)
    store.save_candidate(trained(1, 0, 0.5, explanation=HOSTILE))
    store.save_candidate(trained(1, 1, 1.5))
    failed = Attempt(0, program(3.0), check=CheckResult(CheckCategory.NON_FINITE, "the total is NaN"))
    store.save_candidate(Candidate("r1c2", 1, 2, "failed_check", (failed,), message="check failed (non_finite)"))
    return store
