"""How the wall time of a round of trainings scales with the number of parallel workers.

The same K trainings (the task's human reward, the same budget; seeds 0..K-1)
run through the library's own path (`autoreward.loop.training.train`: one jailed
worker process per training, started by `LocalExecutor`), as the design loop
runs a round's candidates, once for each worker count asked (default 1 and
every count up to the machine's cores), one after the other in one run. It
prints each way's wall time and its speed-up over one worker. Videos are off:
this measures training.

Usage:
    python bench/workers.py                       # 4 trainings of 16 384 steps, workers 1 and 2 on 2 cores
    python bench/workers.py --trainings 8 --workers 1,2,4,8
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dataclass_args import parse_dataclass  # bench/, first on sys.path when a script runs

# Measure the autoreward of this checkout (workers inherit the location of the package imported here).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autoreward.config import TrainingConfig  # noqa: E402
from autoreward.loop.runner import Runner
from autoreward.loop.training import train  # noqa: E402
from autoreward.sandbox.jail import SETTING_VARIABLE, Jail  # noqa: E402
from autoreward.task.files import find_task  # noqa: E402


@dataclass
class Args:
    task: str = field(default="half_cheetah_forward", metadata={"help": "task id (its human_reward is trained)"})
    trainings: int = field(default=4, metadata={"help": "trainings in the round"})
    steps: int = field(default=16_384, metadata={"help": "env steps of each training"})
    workers: str = field(default="", metadata={"help": "comma-separated worker counts (default: 1 up to the cores)"})
    n_envs: int = field(default=4, metadata={"help": "environments per training"})


def parse_args() -> Args:
    return parse_dataclass(Args, __doc__.split("\n")[0])


def main() -> None:
    args = parse_args()
    task = find_task(args.task)
    code = Path(task.human_reward).read_text()
    counts = [int(w) for w in args.workers.split(",")] if args.workers else list(range(1, (os.cpu_count() or 1) + 1))
    jail = Jail.from_setting(os.environ.get(SETTING_VARIABLE))
    print(
        f"task {task.id}: {args.trainings} trainings of {args.steps} steps ({args.n_envs} envs each), "
        f"worker counts {counts}"
    )
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, jail {'on' if jail.active else 'off'}")
    print(f"autoreward measured: {Path(sys.modules['autoreward.loop.training'].__file__).parent}", flush=True)

    walls = {}
    with tempfile.TemporaryDirectory(prefix="autoreward-workers-") as scratch:
        for count in counts:

            def one(seed: int) -> None:
                config = TrainingConfig.from_budget(
                    task.budget, steps=args.steps, n_envs=args.n_envs, seed=seed, eval_episodes=1, video=False
                )
                train(task, config, Path(scratch) / f"w{count}" / f"s{seed}", code, runner=Runner.connect(jail=jail))

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=count) as pool:
                list(pool.map(one, range(args.trainings)))
            walls[count] = time.monotonic() - started
            print(f"  {count} worker(s): {walls[count]:.1f} s", flush=True)

    print()
    print(f"{'workers':>8}{'wall s':>10}{'speed-up':>10}{'per worker':>12}")
    for count, wall in walls.items():
        speedup = walls[counts[0]] / wall
        print(f"{count:>8}{wall:>10.1f}{speedup:>10.2f}{speedup / count * counts[0]:>12.2f}")
    print(f"speed-up: wall time with {counts[0]} worker(s) / wall time; per worker: speed-up / (workers / {counts[0]})")


if __name__ == "__main__":
    main()
