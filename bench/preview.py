"""How long a preview by model-predictive control takes, next to a PPO training of the same reward, and what
each scores on the task score.

For each task, its own hand-written reward (`human_reward`) is previewed once
(`autoreward.loop.preview.preview`: planning, replay and scoring, each in a
jailed worker, the task's full episode) and trained once by PPO for
--ppo-steps (`autoreward.loop.training.train`, the task's budget otherwise,
seed 0, videos off), one after the other. It prints each wall time and task
score side by side. A preview is one episode; a training's score is the mean
of its held-out episodes.

Usage:
    python bench/preview.py                                        # 4 locomotion tasks, default planner
    python bench/preview.py --tasks half_cheetah_forward --samples 16 --horizon 20 --ppo-steps 50000
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dataclass_args import parse_dataclass  # bench/, first on sys.path when a script runs

# Measure the autoreward of this checkout (workers inherit the location of the package imported here).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autoreward.config import PlannerSettings, TrainingConfig  # noqa: E402
from autoreward.loop.preview import preview  # noqa: E402
from autoreward.loop.runner import Runner
from autoreward.loop.training import train  # noqa: E402
from autoreward.sandbox.jail import SETTING_VARIABLE, Jail  # noqa: E402
from autoreward.task.files import find_task  # noqa: E402

DEFAULTS = PlannerSettings()


@dataclass
class Args:
    tasks: str = field(
        default="half_cheetah_forward,hopper_forward,walker_forward,ant_forward",
        metadata={"help": "comma-separated task ids (each previews and trains its own human_reward)"},
    )
    horizon: int = field(default=DEFAULTS.horizon, metadata={"help": "planner horizon, control steps"})
    samples: int = field(default=DEFAULTS.samples, metadata={"help": "planner rollouts per control step"})
    noise: float = field(default=DEFAULTS.noise, metadata={"help": "planner noise, share of half the range"})
    ppo_steps: int = field(default=100_000, metadata={"help": "PPO steps of the training beside each preview"})
    out: str = field(default="", metadata={"help": "folder for the previews and trainings (default: a temporary one)"})


def main() -> None:
    args = parse_dataclass(Args, __doc__.split("\n")[0])
    settings = PlannerSettings(horizon=args.horizon, samples=args.samples, noise=args.noise)
    setting = os.environ.get(SETTING_VARIABLE) or "on"
    jail = Jail.from_setting(setting)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-preview-"))
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores, jail {setting}")
    print(f"planner: {settings}; PPO: {args.ppo_steps} steps; folders in {out}")
    rows = []
    for task_id in args.tasks.split(","):
        task = find_task(task_id)
        code = Path(task.human_reward).read_text()
        started = time.monotonic()
        previewed = preview(
            task, code, out / task_id / "preview", settings, runner=Runner.connect(jail=jail), video=False
        )
        preview_seconds = time.monotonic() - started
        config = TrainingConfig.from_budget(task.budget, seed=0, steps=args.ppo_steps, video=False)
        started = time.monotonic()
        trained = train(task, config, out / task_id / "ppo", code, runner=Runner.connect(jail=jail))
        training_seconds = time.monotonic() - started
        row = (
            task_id,
            task.env_id,
            previewed.steps,
            preview_seconds,
            previewed.planning_seconds,
            previewed.score,
            training_seconds,
            trained.evaluation.fitness_mean,
            trained.evaluation.fitness_std,
        )
        rows.append(row)
        print(
            f"  {task_id}: preview {preview_seconds:.0f} s ({previewed.steps} steps, task score "
            f"{previewed.score:.3g}); PPO {training_seconds:.0f} s (task score {trained.evaluation.fitness_mean:.3g})",
            flush=True,
        )
    print()
    print(
        "| task | environment | preview: steps | preview: wall s (planning s) | preview: task score "
        f"| PPO {args.ppo_steps:,}: wall s | PPO: task score (± over held-out episodes) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for task_id, env_id, steps, wall, planning, score, ppo_wall, ppo_score, ppo_std in rows:
        print(
            f"| {task_id} | {env_id} | {steps} | {wall:.0f} ({planning:.0f}) | {score:.3g} "
            f"| {ppo_wall:.0f} | {ppo_score:.3g} ± {ppo_std:.2g} |"
        )


if __name__ == "__main__":
    main()
