"""Does successive halving pick the same best reward as training every candidate fully, for fewer steps?

A fixed pool of scripted reward programs for one task (by default the half
cheetah running backwards) is trained two ways, one after the other, in one
run, with the same seed, budget and number of parallel workers:

- full:    every candidate trained to the whole budget B
           (`autoreward.loop.training.train`, as the design loop does without --halving);
- halving: successive halving (`autoreward.loop.halving`, as the loop does with
           --halving): every candidate trained to B / eta^R, the best 1/eta
           (by `rung_score`: the task score of the slice's training episodes)
           continued to the next rung, until the last one reaches B.

Both ways run in jailed workers through the library's own code paths. The
script prints each candidate's held-out task score both ways, the total env
steps each way spent (PPO's num_timesteps, summed over candidates), their
ratio, the wall time of each, and whether both pick the same best candidate
(the full way's best is the top score; the halving way's is the top score
among candidates that reached B, as in the loop).

With --seeds, both ways run on each seed. Full training's best is then the
best mean over the seeds: candidates whose scores differ by less than the
seed-to-seed spread swap places from one seed to the next, so one seed's pick
among them is a coin toss for any method (bench/README.md has the figures).
Halving must pick that best on every seed.

Usage:
    python bench/early_stopping.py                     # 6 candidates, B = 65 536 steps, eta 2, 2 workers
    python bench/early_stopping.py --steps 32768       # a quicker run
    python bench/early_stopping.py --eta 3 --workers 4
    python bench/early_stopping.py --out runs/es      # keeps the trainings; run again, the full ones are read back
    python bench/early_stopping.py --steps 196608 --seeds 0,1,2   # the figures in bench/README.md
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

from autoreward.config import TrainingConfig
from autoreward.loop.halving import planned_steps, rung_score, schedule, successive_halving, train_slice
from autoreward.loop.runner import Runner
from autoreward.loop.training import finished_training, train
from autoreward.records import Attempt, Candidate
from autoreward.sandbox.jail import SETTING_VARIABLE, Jail
from autoreward.task.files import find_task

SPEED = "(next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt"
EFFORT = "np.sum(np.square(action), axis=1)"


def program(reward: str, terms: dict[str, str]) -> str:
    names = ", ".join(f'"{k}": {v}' for k, v in terms.items())
    return (
        "import numpy as np\n\n"
        "def compute_reward(state, action, next_state):\n"
        f"    x_velocity = {SPEED}\n"
        f"    effort = {EFFORT}\n"
        f"    reward = {reward}\n"
        f"    return reward, {{{names}}}\n"
    )


# The pool: what a round of LLM candidates for "run backwards" tends to hold, good, weak and wrong.
POOL = {
    "human": program("-x_velocity - 0.1 * effort", {"backward": "-x_velocity", "ctrl": "-0.1 * effort"}),
    "reversed": program("x_velocity - 0.1 * effort", {"forward": "x_velocity", "ctrl": "-0.1 * effort"}),
    "alive_only": program("np.ones_like(x_velocity)", {"alive": "np.ones_like(x_velocity)"}),
    "weak_speed": program(
        "-0.2 * x_velocity - 0.1 * effort", {"backward": "-0.2 * x_velocity", "ctrl": "-0.1 * effort"}
    ),
    "effort_bonus": program("-x_velocity + 0.1 * effort", {"backward": "-x_velocity", "ctrl": "0.1 * effort"}),
    "speed_only": program("-x_velocity", {"backward": "-x_velocity"}),
}


@dataclass
class Args:
    task: str = field(
        default="half_cheetah_backward", metadata={"help": "task id (see `autoreward tasks`) or a task .toml file"}
    )
    steps: int = field(
        default=65_536,
        metadata={"help": "the whole budget B of each candidate (a multiple of PPO's rollout keeps slices exact)"},
    )
    eta: int = field(default=2, metadata={"help": "each rung keeps the best 1/eta"})
    workers: int = field(default=2, metadata={"help": "trainings at once, both ways"})
    n_envs: int = field(default=4, metadata={"help": "environments per training"})
    eval_episodes: int = field(
        default=3, metadata={"help": "held-out episodes scoring each slice and each full training"}
    )
    seed: int = field(default=0, metadata={"help": "seed of every training, the same both ways (without --seeds)"})
    seeds: str = field(
        default="",
        metadata={
            "help": "comma-separated seeds: both ways on each; full training's best "
            "is then the best mean over them, and halving must pick it on every seed"
        },
    )
    out: str = field(
        default="",
        metadata={
            "help": "folder for the trainings, kept (default: a temporary one, removed); "
            "full trainings already finished there are read, not re-run"
        },
    )


def parse_args() -> Args:
    return parse_dataclass(Args, __doc__.split("\n")[0])


def main() -> None:
    args = parse_args()
    task = find_task(args.task)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    base = TrainingConfig.from_budget(
        task.budget, steps=args.steps, n_envs=args.n_envs, eval_episodes=args.eval_episodes
    )
    jail = Jail.from_setting(os.environ.get(SETTING_VARIABLE))
    names = list(POOL)
    candidates = [
        Candidate(id=f"c{i}", round=1, index=i, status="ready", attempts=(Attempt(0, POOL[name]),))
        for i, name in enumerate(names)
    ]
    rungs = schedule(len(candidates), args.steps, args.eta)
    higher = task.fitness.higher_is_better
    sign = 1.0 if higher else -1.0
    print(
        f"task {task.id}: {len(candidates)} candidates, budget B = {args.steps} steps each, {base.algo.upper()} "
        f"with {args.n_envs} envs, seeds {seeds}, {args.workers} workers, eta {args.eta}"
    )
    print(
        "halving schedule: "
        + ", ".join(f"{r.candidates} to {r.steps}" for r in rungs)
        + f" steps ({planned_steps(rungs)} planned, against {len(candidates) * args.steps} for full training)"
    )
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, jail {'on' if jail.active else 'off'}")

    reused: list[str] = []
    full: dict[int, list[Candidate]] = {}
    halved: dict[int, list[Candidate]] = {}
    walls = {"full": 0.0, "halving": 0.0}
    with tempfile.TemporaryDirectory(prefix="autoreward-early-stopping-") as scratch:
        root = Path(args.out or scratch)
        for seed in seeds:
            config = replace(base, seed=seed)

            # 1. Full: every candidate to the whole budget (one already finished in --out is read, not re-run).
            def trained_fully(candidate: Candidate) -> Candidate:
                folder = root / "full" / f"seed_{seed}" / candidate.id
                training = finished_training(folder) if args.out else None
                if training is not None and training.steps == args.steps and training.seed == seed:
                    reused.append(f"{seed}/{candidate.id}")
                else:
                    training = train(task, config, folder, candidate.code, runner=Runner.connect(jail=jail))
                print(
                    f"  seed {seed} full     {candidate.id} {names[candidate.index]:>12}: task score "
                    f"{training.evaluation.fitness_mean:.3f}, training episodes late "
                    f"{rung_score(replace(candidate, training=training)):.3f}"
                    + (" (read from --out)" if f"{seed}/{candidate.id}" in reused else ""),
                    flush=True,
                )
                return replace(candidate, status="trained", training=training)

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.workers) as pool:
                full[seed] = list(pool.map(trained_fully, candidates))
            walls["full"] += time.monotonic() - started

            # 2. Successive halving: the same candidates, seed and budget.
            def sliced(candidate: Candidate, start: int | None, until: int) -> Candidate:
                folder = root / "halving" / f"seed_{seed}" / candidate.id
                training = train_slice(
                    task, config, folder, candidate.code, start, until, runner=Runner.connect(jail=jail)
                )
                trained = replace(candidate, status="trained", training=training)
                print(
                    f"  seed {seed} halving  {candidate.id} {names[candidate.index]:>12}: {training.steps} steps, "
                    f"task score {training.evaluation.fitness_mean:.3f}, rung score {rung_score(trained):.3f}",
                    flush=True,
                )
                return trained

            started = time.monotonic()
            halved[seed] = successive_halving(candidates, rungs, sliced, higher, args.workers)
            walls["halving"] += time.monotonic() - started

    # Full training's best: the best mean task score over the seeds (one seed's pick can be its noise).
    means = {c.id: sum(full[s][c.index].fitness for s in seeds) / len(seeds) for c in candidates}
    ranked = sorted(candidates, key=lambda c: (-sign * means[c.id], c.index))
    full_best = ranked[0]
    picks = {
        s: max((c for c in halved[s] if c.stopped_at is None), key=lambda c: (sign * c.fitness, -c.index))
        for s in seeds
    }
    one_seed_picks = {s: max(full[s], key=lambda c: (sign * c.fitness, -c.index)) for s in seeds}

    print()
    print(
        "| candidate | reward | "
        + " | ".join(f"full, seed {s}" for s in seeds)
        + " | full, mean | rank | "
        + " | ".join(f"halving, seed {s}: stopped at" for s in seeds)
        + " |"
    )
    print("|---|---|" + "---:|" * (2 * len(seeds) + 2))
    for candidate in candidates:
        scores = " | ".join(f"{full[s][candidate.index].fitness:.3f}" for s in seeds)
        stops = " | ".join(str(halved[s][candidate.index].stopped_at or "-") for s in seeds)
        print(
            f"| {candidate.id} | {names[candidate.index]} | {scores} | {means[candidate.id]:.3f} | "
            f"{ranked.index(candidate) + 1} | {stops} |"
        )
    print()
    full_steps = sum(c.training.steps for s in seeds for c in full[s])
    halving_steps = sum(c.training.steps for s in seeds for c in halved[s])
    print(
        f"env steps, full:    {full_steps}  (wall {walls['full']:.0f} s"
        + (f"; {len(reused)} trainings read from --out, not timed)" if reused else ")")
    )
    print(f"env steps, halving: {halving_steps}  (wall {walls['halving']:.0f} s)")
    print(f"ratio full / halving: {full_steps / halving_steps:.2f}x steps")
    print(
        f"full training's best (mean over seeds {seeds}): {full_best.id} ({names[full_best.index]}, "
        f"{means[full_best.id]:.3f})"
    )
    print("full training's pick on one seed: " + ", ".join(f"seed {s} {c.id}" for s, c in one_seed_picks.items()))
    same = all(picks[s].id == full_best.id for s in seeds)
    for s in seeds:
        gap = sign * (means[full_best.id] - means[picks[s].id])
        print(
            f"halving's pick, seed {s}: {picks[s].id} ({names[picks[s].index]}): "
            + (
                "SAME PICK"
                if picks[s].id == full_best.id
                else f"DIFFERENT PICK, its mean trained fully {means[picks[s].id]:.3f}, {gap:.3f} below the best"
            )
        )
    verdict = same and full_steps >= 2 * halving_steps
    print(
        "MEETS (same pick on every seed, at least 2x fewer steps)"
        if verdict
        else "DOES NOT MEET (same pick on every seed and at least 2x fewer steps)"
    )


if __name__ == "__main__":
    main()
