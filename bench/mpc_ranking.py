"""Does a preview rank a pool's rewards as PPO does? MPC task scores against recorded PPO task scores.

Issue 28 asks whether `--prescreen mpc` (preview each candidate, train them in
the order of their preview's task score, perhaps only the top part) would be
worth having. This measures the question on pools whose PPO results are
already recorded in bench/README.md: each program of a pool is previewed once
(`autoreward.loop.preview.preview`: one episode from the held-out reset,
planned on the program by predictive sampling with the task's own planner
settings, seed 0, jailed), and its task score is set beside the PPO task
score recorded for it (the mean over seeds 0, 1 and 2). It prints both, the
Spearman rank correlation between them, and whether the top half by preview
holds the PPO best. The PPO column is read from this file's RECORDED table,
each entry saying where in bench/README.md it was measured; nothing is
trained here.

Usage:
    python bench/mpc_ranking.py                        # both pools
    python bench/mpc_ranking.py --pools early_stopping --out /tmp/bench/mpc
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from dataclass_args import parse_dataclass  # bench/, first on sys.path when a script runs

# Measure the autoreward of this checkout (workers inherit the location of the package imported here).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autoreward.loop.preview import preview  # noqa: E402
from autoreward.loop.runner import Runner  # noqa: E402
from autoreward.sandbox.jail import SETTING_VARIABLE, Jail  # noqa: E402
from autoreward.task.files import find_task  # noqa: E402

# Pool: (task id, PPO task score per program: the mean over seeds 0-2, where bench/README.md records it).
RECORDED = {
    "early_stopping": (
        "half_cheetah_backward",
        {
            "human": 3.353,
            "reversed": -0.010,
            "alive_only": 0.001,
            "weak_speed": 2.983,
            "effort_bonus": 3.585,
            "speed_only": 3.666,
        },
        "early_stopping.py at a58146f, 2026-11-22: 196 608 steps a training",
    ),
    "walker_one_leg": (
        "walker_one_leg",
        {"human": 987, "contact_load": 723, "foot_com_lift": 665, "foot_frame_height": 47.7, "stand_upright": 0},
        "prescreen.py --pool walker_one_leg, 2026-12-02: 300 000 steps a training",
    ),
}


@dataclass
class Args:
    pools: str = field(default="early_stopping,walker_one_leg", metadata={"help": "comma-separated pools"})
    out: str = field(default="", metadata={"help": "folder for the previews (default: a temporary one)"})


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their mean rank (as Spearman's correlation takes them)."""
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a, b) -> float:
    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    return float(np.corrcoef(ra, rb)[0, 1])


def programs_of(pool: str, task) -> dict[str, str]:
    if pool == "early_stopping":
        from early_stopping import POOL

        return dict(POOL)
    folder = Path(__file__).resolve().parent / "pools" / pool
    found = {path.stem: path.read_text() for path in sorted(folder.glob("*.py"))}
    found["human"] = Path(task.human_reward).read_text()
    return found


def main() -> None:
    args = parse_dataclass(Args, __doc__.split("\n")[0])
    setting = os.environ.get(SETTING_VARIABLE) or "on"
    runner = Runner.connect(jail=Jail.from_setting(setting))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-mpc-"))
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores, jail {setting}")
    for pool in args.pools.split(","):
        task_id, recorded, source = RECORDED[pool]
        task = find_task(task_id)
        programs = programs_of(pool, task)
        print(f"\n{pool} ({task_id}, planner {task.planner}); PPO: bench/README.md, {source}")
        rows = []
        for name, ppo in recorded.items():
            started = time.monotonic()
            previewed = preview(task, programs[name], out / pool / name, task.planner, runner=runner, video=False)
            wall = time.monotonic() - started
            rows.append((name, previewed.score, previewed.steps, wall, ppo))
            print(
                f"  {name}: preview {previewed.score:.4g} ({previewed.steps} steps, {wall:.0f} s); PPO {ppo:g}",
                flush=True,
            )
        mpc = [r[1] for r in rows]
        ppo = [r[4] for r in rows]
        top = sorted(rows, key=lambda r: r[1], reverse=True)[: (len(rows) + 1) // 2]
        best = max(rows, key=lambda r: r[4])[0]
        print()
        print(
            "| program | preview: task score | preview: steps | preview: wall s | PPO: task score (mean of 3 seeds) |"
        )
        print("|---|---:|---:|---:|---:|")
        for name, score, steps, wall, recorded_score in sorted(rows, key=lambda r: r[4], reverse=True):
            print(f"| {name} | {score:.4g} | {steps} | {wall:.0f} | {recorded_score:g} |")
        print(f"Spearman rank correlation, preview against PPO: {spearman(mpc, ppo):.2f} over {len(rows)} programs")
        print(
            f"top half by preview: {', '.join(r[0] for r in top)}; the PPO best ({best}) "
            f"{'is' if best in {r[0] for r in top} else 'is NOT'} among them"
        )
        print(f"preview wall in all: {sum(r[3] for r in rows):.0f} s")


if __name__ == "__main__":
    main()
