"""Does the pre-screen block a good reward, or stop a bad one? Measured on pools of real programs, against many seeds.

A pool is a task and the reward programs of a round of it (--pool):

- demo:           mountain_car_quick, every program of the demo's transcript (envs/demo/mountain_car_quick.md,
                  the last version of each candidate) that passes the check; the critic's verdicts are ignored;
- early_stopping: half_cheetah_backward, the six scripted programs of bench/early_stopping.py;
- walker_one_leg: walker_one_leg (Walker2d on the right leg), the programs of bench/pools/walker_one_leg/ and
                  the task's hand-written reward: a hard task, where most trainings fail;
- a folder:       its *.py programs, with --task.

Every program is trained fully on every seed of --seeds, in jailed workers through the library's
`autoreward.loop.training.train` (finished trainings in --out are read back, not re-run). The truth is each
program's mean task score over the seeds. Then, with each seed in turn as the round's seed, every program is
pre-screened as a new candidate against the stored held-out episodes of all the others on that seed (leave one
out: a round-2 candidate is screened on round 1's episodes; here each program plays round 2 against the rest),
its stored episodes scored in a jailed worker (`autoreward.loop.prescreen.stored_rewards`), and judged by two
rules side by side on the same rewards:

- before: the rule until commit 283dc04 (a pair counts when its task scores differ by a tenth of the stored
  episodes' spread; dropped when it agrees on fewer than half of at least 3 pairs);
- after:  today's rule (`autoreward.loop.prescreen.verdict`: a margin on the task's scale, a binomial test at
  p < 0.01, nothing dropped on a pool of failures) and, over the round, at most half dropped (`over_the_half`).

A dropped program **blocks a good reward** when its mean over the seeds beats the mean of one the same rule kept
on that seed; otherwise it **stops a bad one**. The script also prints what a pick on one seed costs (the best
on that seed against the many-seed best), for the question of --confirm-seeds.

Usage:
    python bench/prescreen.py --pool demo --out runs/prescreen_demo
    python bench/prescreen.py --pool early_stopping --out runs/prescreen_es
    python bench/prescreen.py --pool walker_one_leg --out runs/prescreen_walker    # 5 x 3 trainings of 300k steps
    python bench/prescreen.py --pool early_stopping --steps 16384 --seeds 0,1     # a quick run
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from dataclass_args import parse_dataclass  # bench/, first on sys.path when a script runs

from autoreward.config import Task, TrainingConfig
from autoreward.contract.checker import check_program
from autoreward.llm.backends import ReplayLLM
from autoreward.llm.extract import extract_program
from autoreward.loop.evaluation import EVALUATION_FOLDER, TRANSITIONS_FILE
from autoreward.loop.prescreen import LabelledEpisode, labelled_episodes, over_the_half, stored_rewards, verdict
from autoreward.loop.runner import Runner
from autoreward.loop.training import finished_training, train
from autoreward.records import Attempt, Candidate
from autoreward.sandbox.jail import SETTING_VARIABLE, Jail
from autoreward.task.files import find_task

BENCH = Path(__file__).resolve().parent
REPOSITORY = BENCH.parent


@dataclass
class Args:
    pool: str = field(
        default="early_stopping",
        metadata={"help": "demo, early_stopping, walker_one_leg, or a folder of reward programs (with --task)"},
    )
    task: str = field(default="", metadata={"help": "task id or .toml file (default: the pool's own)"})
    steps: int = field(default=0, metadata={"help": "training steps per program (default: the pool's own)"})
    seeds: str = field(default="0,1,2", metadata={"help": "comma-separated seeds; each program trains on each"})
    workers: int = field(default=2, metadata={"help": "trainings at once"})
    eval_episodes: int = field(default=5, metadata={"help": "held-out episodes per training (the stored pool)"})
    out: str = field(
        default="", metadata={"help": "folder for the trainings, kept; finished ones there are read, not re-run"}
    )


POOLS = {  # name: (task id, steps)
    "demo": ("mountain_car_quick", 60_000),
    "early_stopping": ("half_cheetah_backward", 196_608),  # at 65 536 steps every policy scores about 0
    "walker_one_leg": ("walker_one_leg", 300_000),
}


def pool_programs(name: str, task: Task, jail: Jail) -> dict[str, str]:
    """The pool's reward programs by name."""
    if name == "early_stopping":
        from early_stopping import POOL

        return dict(POOL)
    if name == "demo":
        return _demo_programs(task, jail)
    folder = BENCH / "pools" / name if name in POOLS else Path(name)
    programs = {path.stem: path.read_text() for path in sorted(folder.glob("*.py"))}
    if name in POOLS and task.human_reward:
        programs["human"] = Path(task.human_reward).read_text()
    if not programs:
        raise SystemExit(f"{folder} holds no reward program (*.py)")
    return programs


def _demo_programs(task: Task, jail: Jail) -> dict[str, str]:
    # Each candidate's last designed or repaired program, as the demo replays them; those failing the check out.
    text = (REPOSITORY / "envs" / "demo" / "mountain_car_quick.md").read_text()
    pieces = ReplayLLM.MARKER.split(text)
    last: dict[str, str] = {}
    for tag, reply in zip(pieces[1::2], pieces[2::2]):
        found = re.fullmatch(r"(r\d+)/(c\d+)/(designer|repair\d+)", tag)
        if found:
            last[f"{found[1]}{found[2]}"] = extract_program(reply)
    passing = {}
    with tempfile.TemporaryDirectory(prefix="autoreward-prescreen-check-") as scratch:
        for name, code in last.items():
            result = check_program(task, code, Path(scratch) / name, jail=jail)
            print(f"  demo program {name}: check {'passed' if result.ok else 'failed: ' + result.message[:100]}")
            if result.ok:
                passing[name] = code
    return passing


def old_rule(episodes: list[LabelledEpisode], rewards: np.ndarray, higher: bool) -> str:
    """The pre-screen's rule until commit 283dc04: "dropped", or "kept" with why."""
    fitness = np.array([e.fitness for e in episodes]) * (1.0 if higher else -1.0)
    spread = float(fitness.max() - fitness.min()) if len(fitness) else 0.0
    right = pairs = 0
    for i in range(len(episodes)):
        for j in range(i + 1, len(episodes)):
            if spread == 0.0 or abs(fitness[i] - fitness[j]) <= 0.1 * spread:
                continue
            pairs += 1
            better, worse = (i, j) if fitness[i] > fitness[j] else (j, i)
            right += rewards[better] > rewards[worse]
    if pairs < 3:
        return "kept (fewer than 3 pairs)"
    return f"dropped ({right / pairs:.0%})" if right / pairs < 0.5 else f"kept ({right / pairs:.0%})"


def main() -> None:
    args = parse_dataclass(Args, __doc__.split("\n")[0])
    default_task, default_steps = POOLS.get(args.pool, ("", 0))
    if not (args.task or default_task):
        raise SystemExit("a folder of programs needs --task")
    task = find_task(args.task or default_task)
    steps = args.steps or default_steps or task.budget.steps
    seeds = [int(s) for s in args.seeds.split(",")]
    jail = Jail.from_setting(os.environ.get(SETTING_VARIABLE))
    higher = task.fitness.higher_is_better
    sign = 1.0 if higher else -1.0
    print(
        f"pool {args.pool}, task {task.id} (success threshold {task.success_threshold}), {steps} steps per "
        f"training, seeds {seeds}, {args.eval_episodes} held-out episodes each, {args.workers} workers"
    )
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, jail {'on' if jail.active else 'off'}")
    programs = pool_programs(args.pool, task, jail)
    names = list(programs)
    base = TrainingConfig.from_budget(task.budget, steps=steps, eval_episodes=args.eval_episodes)

    with tempfile.TemporaryDirectory(prefix="autoreward-prescreen-") as scratch:
        root = Path(args.out or scratch).resolve()
        trained: dict[int, dict[str, Candidate]] = {s: {} for s in seeds}
        reused = []

        def trained_on(job: tuple[int, int]) -> None:
            seed, index = job
            name = names[index]
            folder = root / f"seed_{seed}" / name
            training = finished_training(folder)
            if training is not None and training.steps == steps and training.seed == seed:
                reused.append(folder)
            else:
                training = train(
                    task, replace(base, seed=seed), folder, programs[name], runner=Runner.connect(jail=jail)
                )
            print(f"  seed {seed} {name:>18}: task score {training.evaluation.fitness_mean:.3f}", flush=True)
            candidate = Candidate(
                id=name, round=1, index=index, status="trained", attempts=(Attempt(0, programs[name]),)
            )
            trained[seed][name] = replace(candidate, training=training)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(trained_on, [(s, i) for s in seeds for i in range(len(names))]))
        wall = time.monotonic() - started
        print(f"trainings: {len(seeds) * len(names)} ({len(reused)} read from --out), wall {wall:.0f} s")

        means = {n: statistics.fmean(trained[s][n].fitness for s in seeds) for n in names}
        best = max(names, key=lambda n: sign * means[n])

        def transitions_of(candidate: Candidate) -> Path:
            return root / f"seed_{candidate.training.seed}" / candidate.id / EVALUATION_FOLDER / TRANSITIONS_FILE

        rules: dict[str, dict[int, dict[str, str]]] = {"before": {}, "after": {}}
        failures_only: dict[int, bool] = {}
        for seed in seeds:
            rules["before"][seed], rules["after"][seed] = {}, {}
            screened = []
            all_episodes = labelled_episodes(list(trained[seed].values()), transitions_of)
            failures_only[seed] = not any(
                task.fitness.succeeded(e.fitness, task.success_threshold) for e in all_episodes
            )
            for index, name in enumerate(names):
                others = [e for e in all_episodes if e.source != name]
                rewards = stored_rewards(
                    task, programs[name], others, root / "screening" / f"seed_{seed}" / name, Runner.connect(jail=jail)
                )
                rules["before"][seed][name] = old_rule(others, rewards, higher)
                screening = verdict(task, others, rewards)
                p = "" if screening.p_value is None else f", p {screening.p_value:.2g}"
                agreement = "" if screening.agreement is None else f"{screening.agreement:.0%}"
                rules["after"][seed][name] = f"{screening.verdict} ({agreement}{p})".replace(" ()", "")
                screened.append(
                    Candidate(
                        id=name,
                        round=2,
                        index=index,
                        attempts=(Attempt(0, programs[name]),),
                        status="prescreened_out" if screening.rejects() else "ready",
                        screening_agreement=screening.agreement,
                        screening_p_value=screening.p_value,
                    )
                )
            for saved in over_the_half(screened):
                rules["after"][seed][saved.id] = rules["after"][seed][saved.id].replace("dropped", "half_rule", 1)

    print()
    print(
        "| program | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | mean | "
        + " | ".join(f"{rule}, seed {s}" for rule in rules for s in seeds)
        + " |"
    )
    print("|---|" + "---:|" * (len(seeds) + 1) + "---|" * (2 * len(seeds)))
    for name in sorted(names, key=lambda n: -sign * means[n]):
        scores = " | ".join(f"{trained[s][name].fitness:.3g}" for s in seeds)
        verdicts = " | ".join(rules[rule][s][name] for rule in rules for s in seeds)
        print(f"| {name} | {scores} | **{means[name]:.3g}** | {verdicts} |")
    print()
    for seed in seeds:
        print(f"seed {seed}: every stored episode a failure: {'yes' if failures_only[seed] else 'no'}")
    for rule, by_seed in rules.items():
        blocked = stopped = 0
        for seed, verdicts in by_seed.items():
            kept = [n for n in names if not verdicts[n].startswith("dropped")]
            worst_kept = min((sign * means[n] for n in kept), default=float("inf"))
            for name in names:
                if verdicts[name].startswith("dropped"):
                    if sign * means[name] > worst_kept:
                        blocked += 1
                    else:
                        stopped += 1
        blocked_best = sum(by_seed[s][best].startswith("dropped") for s in seeds)
        on_failures = sum(v.startswith("dropped") for s in seeds if failures_only[s] for v in by_seed[s].values())
        print(
            f"{rule:>6}: blocked {blocked} good rewards (mean over seeds above one it kept), stopped {stopped} bad "
            f"ones, of {len(names) * len(seeds)} screenings; the many-seed best ({best}) dropped on {blocked_best} "
            f"of {len(seeds)} seeds; dropped on pools of failures: {on_failures}"
        )
    print()
    for seed in seeds:
        pick = max(names, key=lambda n: (sign * trained[seed][n].fitness, -names.index(n)))
        print(
            f"one-seed pick on seed {seed}: {pick} (its mean {means[pick]:.3g}; the many-seed best {best}, "
            f"{means[best]:.3g}: {sign * (means[best] - means[pick]):.3g} lost)"
        )


if __name__ == "__main__":
    main()
