"""How long a preview by model-predictive control takes, next to a PPO training of the same reward, and what
each scores on the task score.

For each task, its own hand-written reward (`human_reward`) is previewed once
per planner setting (`--planners`; `autoreward.loop.preview.preview`:
planning, replay and scoring, each in a jailed worker, the task's full
episode, seed 0) and trained once by PPO for
--ppo-steps (`autoreward.loop.training.train`, the task's budget otherwise,
seed 0, videos off), one after the other. It prints each wall time and task
score side by side. A preview is one episode; a training's score is the mean
of its held-out episodes.

Usage:
    python bench/preview.py                                        # 4 locomotion tasks, default planner
    python bench/preview.py --tasks hopper_forward --planners 30x32x0.3,60x32x1.0 --ppo-steps 50000
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
    planners: str = field(
        default=f"{DEFAULTS.horizon}x{DEFAULTS.samples}x{DEFAULTS.noise}",
        metadata={"help": "planner settings to try on each task, HORIZONxSAMPLESxNOISE, comma-separated"},
    )
    ppo_steps: int = field(default=100_000, metadata={"help": "PPO steps of the training beside each task (0: none)"})
    out: str = field(default="", metadata={"help": "folder for the previews and trainings (default: a temporary one)"})


def planners(text: str) -> list[PlannerSettings]:
    found = []
    for item in text.split(","):
        horizon, samples, noise = item.split("x")
        found.append(PlannerSettings(horizon=int(horizon), samples=int(samples), noise=float(noise)))
    return found


def main() -> None:
    args = parse_dataclass(Args, __doc__.split("\n")[0])
    setting = os.environ.get(SETTING_VARIABLE) or "on"
    runner = Runner.connect(jail=Jail.from_setting(setting))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-preview-"))
    tried = planners(args.planners)
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores, jail {setting}")
    print(f"planners: {args.planners}; PPO: {args.ppo_steps} steps; folders in {out}")
    rows = []
    for task_id in args.tasks.split(","):
        task = find_task(task_id)
        code = Path(task.human_reward).read_text()
        for settings in tried:
            name = f"{settings.horizon}x{settings.samples}x{settings.noise:g}"
            started = time.monotonic()
            previewed = preview(task, code, out / task_id / f"preview_{name}", settings, runner=runner, video=False)
            wall = time.monotonic() - started
            rows.append((task_id, task.env_id, f"preview {name}", previewed.steps, wall, previewed.score, None))
            print(
                f"  {task_id}, preview {name}: {wall:.0f} s, {previewed.steps} steps, task score "
                f"{previewed.score:.3g} (planning {previewed.planning_seconds:.0f} s)",
                flush=True,
            )
        if args.ppo_steps:
            config = TrainingConfig.from_budget(task.budget, seed=0, steps=args.ppo_steps, video=False)
            started = time.monotonic()
            trained = train(task, config, out / task_id / "ppo", code, runner=runner)
            wall = time.monotonic() - started
            evaluation = trained.evaluation
            rows.append(
                (
                    task_id,
                    task.env_id,
                    f"PPO {args.ppo_steps:,} steps",
                    evaluation.length_mean,
                    wall,
                    evaluation.fitness_mean,
                    evaluation.fitness_std,
                )
            )
            print(f"  {task_id}, PPO: {wall:.0f} s, task score {evaluation.fitness_mean:.3g}", flush=True)
    print()
    print("| task | environment | how | episode steps | wall s | task score |")
    print("|---|---|---|---:|---:|---:|")
    for task_id, env_id, how, steps, wall, score, spread in rows:
        shown = f"{score:.3g}" + (f" ± {spread:.2g} (held-out episodes)" if spread is not None else " (one episode)")
        print(f"| {task_id} | {env_id} | {how} | {steps:.0f} | {wall:.0f} | {shown} |")


if __name__ == "__main__":
    main()
