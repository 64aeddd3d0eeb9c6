"""Does confirming a round's best on more seeds (--confirm-seeds K) pick the many-seed best more often, and at
what cost in training steps?

The early-stopping benchmark's fixed pool of six scripted reward programs (bench/early_stopping.py: the kind of
round an LLM designer writes for "run backwards") is trained fully on every seed of --seeds, in jailed workers
through `autoreward.loop.training.train`, as the design loop trains a round. The truth is the best mean task
score over all those seeds. Then, for each K from 0 (today: the best on one seed) up, and each seed as the
round's own, the library's own rule (`autoreward.loop.confirmation`: the candidates within CONFIRM_MARGIN of that
seed's best, each scored on the next K seeds of the list, picked by the mean) is applied to the measured
scores; the script prints how often its pick is the truth, and the extra trainings and steps it would have
spent. The trainings are deterministic for a seed, so the rule needs no trainings of its own.

Usage:
    python bench/confirm_seeds.py --out runs/confirm    # B = 196 608, seeds 0-4, 2 workers; keeps the trainings
    python bench/confirm_seeds.py --steps 65536 --seeds 0,1,2
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from dataclass_args import parse_dataclass  # bench/, first on sys.path when a script runs
from early_stopping import POOL

from autoreward.config import TrainingConfig
from autoreward.loop.confirmation import CONFIRM_MARGIN, confirmed_pick, near_the_best
from autoreward.loop.runner import Runner
from autoreward.loop.training import finished_training, train
from autoreward.sandbox.jail import SETTING_VARIABLE, Jail
from autoreward.task.files import find_task


@dataclass
class Args:
    task: str = field(default="half_cheetah_backward", metadata={"help": "task id or task .toml file"})
    steps: int = field(default=196_608, metadata={"help": "the budget of each training"})
    seeds: str = field(default="0,1,2,3,4", metadata={"help": "comma-separated seeds, each trains the whole pool"})
    workers: int = field(default=2, metadata={"help": "trainings at once"})
    n_envs: int = field(default=4, metadata={"help": "environments per training"})
    eval_episodes: int = field(default=3, metadata={"help": "held-out episodes per training"})
    margin: float = field(
        default=CONFIRM_MARGIN, metadata={"help": "the share of |best| within which a candidate is near"}
    )
    out: str = field(default="", metadata={"help": "folder for the trainings, kept; finished ones are read back"})


def main() -> None:
    args = parse_dataclass(Args, __doc__.split("\n")[0])
    task = find_task(args.task)
    seeds = [int(s) for s in args.seeds.split(",")]
    higher = task.fitness.higher_is_better
    base = TrainingConfig.from_budget(
        task.budget, steps=args.steps, n_envs=args.n_envs, eval_episodes=args.eval_episodes, video=False
    )
    jail = Jail.from_setting(os.environ.get(SETTING_VARIABLE))
    ids = {f"c{i}": name for i, name in enumerate(POOL)}
    print(
        f"task {task.id}: {len(ids)} candidates, B = {args.steps} steps, {base.algo.upper()} with {args.n_envs} envs, "
        f"seeds {seeds}, margin {args.margin:.0%}"
    )
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, jail {'on' if jail.active else 'off'}")

    scores: dict[str, dict[int, float]] = {key: {} for key in ids}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autoreward-confirm-") as scratch:
        root = Path(args.out or scratch)

        def trained(job: tuple[str, int]) -> None:
            key, seed = job
            folder = root / f"seed_{seed}" / key
            training = finished_training(folder)
            if training is None or training.steps != args.steps:
                training = train(
                    task, replace(base, seed=seed), folder, POOL[ids[key]], runner=Runner.connect(jail=jail)
                )
            scores[key][seed] = training.evaluation.fitness_mean
            print(f"  seed {seed} {key} {ids[key]:>12}: task score {scores[key][seed]:.3f}", flush=True)

        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(trained, [(key, seed) for seed in seeds for key in ids]))
    wall = time.monotonic() - started

    sign = 1.0 if higher else -1.0
    means = {key: sum(scores[key].values()) / len(seeds) for key in ids}
    truth = max(ids, key=lambda key: (sign * means[key], -list(ids).index(key)))
    print()
    print("| candidate | reward | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |")
    print("|---|---|" + "---:|" * (len(seeds) + 1))
    for key, name in ids.items():
        print(f"| {key} | {name} | " + " | ".join(f"{scores[key][s]:.3f}" for s in seeds) + f" | {means[key]:.3f} |")
    print(
        f"\nthe best mean over seeds {seeds}: {truth} ({ids[truth]}, {means[truth]:.3f}); trainings: wall {wall:.0f} s"
    )
    print("\n| K | picks that are the best mean | trainings added per round | steps added per round |")
    print("|---:|---:|---:|---:|")
    for k in range(len(seeds)):
        matches, added = 0, 0
        picks = []
        for position, seed in enumerate(seeds):
            near = near_the_best({key: scores[key][seed] for key in ids}, higher, args.margin)
            extra = [seeds[(position + j) % len(seeds)] for j in range(1, k + 1)]
            if k == 0 or len(near) < 2:
                pick = near[0]
            else:
                pick = confirmed_pick({key: [scores[key][s] for s in [seed, *extra]] for key in near}, higher)
                added += k * len(near)
            matches += pick == truth
            picks.append(f"{seed}:{pick}")
        per_round = added / len(seeds)
        print(
            f"| {k} | {matches} of {len(seeds)} ({', '.join(picks)}) | {per_round:.1f} | "
            f"{per_round * args.steps:,.0f} ({per_round / len(ids):.0%} of the round's {len(ids)} trainings) |"
        )


if __name__ == "__main__":
    main()
