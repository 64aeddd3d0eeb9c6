"""The three reward forms side by side on tasks whose per-step signal is weak: which one trains the best policy?

A reward program is a dense reward (`compute_reward`), progress estimates paid as the task's sparse reward plus
a count bonus (`compute_progress`, ProgressCounts), or latent terms weighted by a return decomposition fitted to
each episode's task score (`compute_latent`, LaRe); contract/forms.py and sim/reward_forms.py say how each is
trained. Issue 27 asks whether the two new forms earn their place; this measures it instead of asserting it.

The tasks (envs/): `mountain_car_sparse` scores an episode 1 if the car reached the flag within 300 steps and 0
if not, so its sparse reward is 0 until the first arrival; `mountain_car_final_position` scores it once, by
where the car is at its end. The same environment, budget and behaviour asked, scored two ways, so the same
three programs serve both (bench/forms_programs/mountain_car_<form>.py). They are written by hand, not by an
LLM: the author of this script was the designer, and gave each form the same knowledge of the task (the car's
mechanical energy, where the flag is, what pushing costs), as far as each form can take it.

Every program is checked once (`autoreward.check`), then trained on every seed of --seeds, on each task's
budget (or --steps), in jailed workers through `autoreward.loop.training.train`, as the design loop trains a
candidate, and scored on the same held-out episodes. It prints, per task and form, the task score per seed,
its mean and standard deviation over the seeds, the held-out success rate, and the difference to the reward
form's score on the same seed (mean and standard deviation of those paired differences).

Then a sweep of the progress form's count bonus on --sweep-task, one setting at a time around the default
(`Budget.progress_beta`, `progress_bins`): each beta of --sweep-betas at the default bins, each bins of
--sweep-bins at the default beta (beta 0 is the sparse reward alone), on --sweep-seeds; the default's own
trainings are the table's, not trained twice.

Usage:
    python bench/forms.py --out /tmp/bench/forms      # both tasks, seeds 0-2, the sweep: 33 trainings
    python bench/forms.py --quick                     # smoke run, about a minute: 7 trainings of 3 000 steps
    python bench/forms.py --tasks mountain_car_sparse --seeds 0,1,2,3,4 --steps 100000 --no-sweep
    python bench/forms.py --forms reward,latent --no-sweep --out /tmp/bench/forms   # two forms, the rest read back
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from dataclass_args import parse_dataclass  # bench/, first on sys.path when a script runs

# Measure the autoreward of this checkout (workers inherit the location of the package imported here).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import autoreward  # noqa: E402
from autoreward.config import REWARD_FORMS, Budget, TrainingConfig  # noqa: E402
from autoreward.loop.runner import Runner  # noqa: E402
from autoreward.loop.training import finished_training, ppo_sizes, train  # noqa: E402
from autoreward.records import TrainingResult  # noqa: E402
from autoreward.sandbox.jail import SETTING_VARIABLE, Jail  # noqa: E402

PROGRAMS = Path(__file__).resolve().parent / "forms_programs"
# Each task's programs: bench/forms_programs/<family>_<form>.py.
FAMILY = {"mountain_car_sparse": "mountain_car", "mountain_car_final_position": "mountain_car"}


@dataclass
class Args:
    tasks: str = field(
        default="mountain_car_sparse,mountain_car_final_position", metadata={"help": "comma-separated task ids"}
    )
    seeds: str = field(default="0,1,2", metadata={"help": "comma-separated seeds, each trains every form"})
    forms: str = field(
        default=",".join(REWARD_FORMS), metadata={"help": "the forms trained, from reward,progress,latent"}
    )
    steps: int = field(default=0, metadata={"help": "the budget of each training (0: each task's own)"})
    eval_episodes: int = field(default=5, metadata={"help": "held-out episodes per training"})
    workers: int = field(default=2, metadata={"help": "trainings at once"})
    sweep_task: str = field(default="mountain_car_sparse", metadata={"help": "the task of the progress sweep"})
    sweep_betas: str = field(default="0,0.01,1", metadata={"help": "progress_beta values tried at the default bins"})
    sweep_bins: str = field(default="5,20", metadata={"help": "progress_bins values tried at the default beta"})
    sweep_seeds: str = field(default="", metadata={"help": "the sweep's seeds (default: --seeds)"})
    no_sweep: bool = field(default=False, metadata={"help": "skip the progress sweep"})
    quick: bool = field(
        default=False, metadata={"help": "smoke run: seed 0, 3 000 steps, 2 episodes, a sweep of beta 0 alone"}
    )
    out: str = field(default="", metadata={"help": "folder for the trainings, kept; finished ones are read back"})


@dataclass(frozen=True)
class Job:
    task: str
    form: str
    seed: int
    beta: float
    bins: int

    def folder(self, root: Path) -> Path:
        return root / self.task / f"{self.form}__beta{self.beta:g}__bins{self.bins}" / f"seed_{self.seed}"


def spread(values: list[float]) -> str:
    """Mean ± the standard deviation over seeds (n - 1), or the mean alone for one seed."""
    mean = statistics.fmean(values)
    return f"{mean:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{mean:.3f}"


def learned(result: TrainingResult) -> str:
    """What a form's training reward learned, in a few words."""
    report = result.form_report
    if report is None:
        return ""
    if report.form == "progress":
        return f"{report.bins_visited} bins visited"
    weights = ", ".join(f"{term.name} {term.weight:+.3g}" for term in report.terms)
    return f"weights {weights} (fitted on {report.episodes_fitted} episodes)"


def along_training(result: TrainingResult) -> str:
    """The task score of the training's own episodes at each point of its curve: did it learn, then unlearn?"""
    return " ".join("-" if point.fitness is None else f"{point.fitness:.2f}" for point in result.curve)


def main() -> None:
    args = parse_dataclass(Args, __doc__.split("\n")[0])
    if args.quick:
        args = replace(args, seeds="0", steps=3000, eval_episodes=2, sweep_betas="0", sweep_bins="")
    seeds = [int(s) for s in args.seeds.split(",")]
    sweep_seeds = [int(s) for s in (args.sweep_seeds or args.seeds).split(",")]
    task_ids = args.tasks.split(",")
    forms = [form for form in REWARD_FORMS if form in args.forms.split(",")]
    tasks = {task_id: autoreward.load_task(task_id) for task_id in task_ids}
    if not args.no_sweep and args.sweep_task not in tasks:
        tasks[args.sweep_task] = autoreward.load_task(args.sweep_task)
    setting = os.environ.get(SETTING_VARIABLE) or "on"
    jail = Jail.from_setting(setting)
    default = Budget()
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, jail {setting}; "
        f"defaults: progress_beta {default.progress_beta:g}, progress_bins {default.progress_bins}, "
        f"latent_episodes {default.latent_episodes}"
    )

    codes = {}
    swept = forms if args.no_sweep or "progress" in forms else [*forms, "progress"]
    for task_id, task in tasks.items():
        for form in swept if task_id == args.sweep_task else forms:
            path = PROGRAMS / f"{FAMILY[task_id]}_{form}.py"
            codes[task_id, form] = path.read_text()
            result = autoreward.check(task, codes[task_id, form])
            print(f"check {task_id} {path.name}: {result.message}")
            if not result.ok:
                raise SystemExit(f"{path} fails its check on {task_id}")

    jobs = [
        Job(task_id, form, seed, tasks[task_id].budget.progress_beta, tasks[task_id].budget.progress_bins)
        for task_id in task_ids
        for seed in seeds
        for form in forms
    ]
    sweep: list[tuple[float, int]] = []
    if not args.no_sweep:
        base = tasks[args.sweep_task].budget
        sweep = [(float(b), base.progress_bins) for b in args.sweep_betas.split(",") if b]
        sweep += [(base.progress_beta, int(k)) for k in args.sweep_bins.split(",") if k]
        sweep = list(dict.fromkeys([(base.progress_beta, base.progress_bins), *sweep]))
        for beta, bins in sweep:
            jobs += [Job(args.sweep_task, "progress", seed, beta, bins) for seed in sweep_seeds]
    jobs = list(dict.fromkeys(jobs))  # the default's sweep runs are the table's

    results: dict[Job, TrainingResult] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autoreward-forms-") as scratch:
        root = Path(args.out or scratch)

        def trained(job: Job) -> None:
            task = tasks[job.task]
            task = replace(task, budget=replace(task.budget, progress_beta=job.beta, progress_bins=job.bins))
            steps = args.steps or task.budget.steps
            config = TrainingConfig.from_budget(
                task.budget, steps=steps, seed=job.seed, eval_episodes=args.eval_episodes, video=False
            )
            folder = job.folder(root)
            result = finished_training(folder)
            rollout = ppo_sizes(steps, config.n_envs)[0] * config.n_envs  # PPO ends on a whole rollout
            same = result is not None and steps <= result.steps < steps + rollout
            if not same or len(result.evaluation.episodes) != args.eval_episodes:
                result = train(task, config, folder, codes[job.task, job.form], runner=Runner.connect(jail=jail))
            results[job] = result
            print(
                f"  {job.task} {job.form} beta {job.beta:g} bins {job.bins} seed {job.seed}: task score "
                f"{result.evaluation.fitness_mean:.3f}, success {result.evaluation.success_rate:.0%}, "
                f"{result.wall_seconds:.0f} s; {learned(result)}",
                flush=True,
            )

        print(f"{len(jobs)} trainings on {args.workers} workers")
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(trained, jobs))
    wall = time.monotonic() - started

    def scores(task_id: str, form: str, on: list[int], beta: float | None = None, bins: int | None = None):
        budget = tasks[task_id].budget
        beta = budget.progress_beta if beta is None else beta
        bins = budget.progress_bins if bins is None else bins
        return [results[Job(task_id, form, seed, beta, bins)] for seed in on]

    print(f"\ntrainings: wall {wall:.0f} s; steps a training: {args.steps or 'each task budget'}")
    print("\n| task | form | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std | success | Δ vs reward |")
    print("|---|---|" + "---:|" * (len(seeds) + 3))
    for task_id in task_ids:
        dense = [r.evaluation.fitness_mean for r in scores(task_id, "reward", seeds)] if "reward" in forms else []
        for form in forms:
            runs = scores(task_id, form, seeds)
            values = [r.evaluation.fitness_mean for r in runs]
            success = statistics.fmean(r.evaluation.success_rate for r in runs)
            delta = "" if form == "reward" or not dense else spread([v - d for v, d in zip(values, dense)])
            print(
                f"| {task_id} | {form} | "
                + " | ".join(f"{v:.3f}" for v in values)
                + f" | {spread(values)} | {success:.0%} | {delta} |"
            )
    print("\nwhat each training reward learned, and the task score of the training's episodes along its curve:")
    for task_id in task_ids:
        for form in forms:
            for seed, run in zip(seeds, scores(task_id, form, seeds)):
                print(f"  {task_id} {form} seed {seed}: {learned(run) or '-'}; in training: {along_training(run)}")

    if sweep:
        base = tasks[args.sweep_task].budget
        reference = [
            r.evaluation.fitness_mean
            for r in scores(args.sweep_task, "progress", sweep_seeds, base.progress_beta, base.progress_bins)
        ]
        print(f"\nprogress sweep on {args.sweep_task}, seeds {sweep_seeds} (beta 0: the sparse reward alone)")
        print(
            "\n| beta | bins | "
            + " | ".join(f"seed {s}" for s in sweep_seeds)
            + " | mean ± std | success | bins visited | Δ vs default |"
        )
        print("|---:|---:|" + "---:|" * (len(sweep_seeds) + 4))
        for beta, bins in sweep:
            runs = scores(args.sweep_task, "progress", sweep_seeds, beta, bins)
            values = [r.evaluation.fitness_mean for r in runs]
            success = statistics.fmean(r.evaluation.success_rate for r in runs)
            visited = statistics.fmean(r.form_report.bins_visited for r in runs)
            is_default = (beta, bins) == (base.progress_beta, base.progress_bins)
            delta = "(default)" if is_default else spread([v - d for v, d in zip(values, reference)])
            print(
                f"| {beta:g} | {bins} | "
                + " | ".join(f"{v:.3f}" for v in values)
                + f" | {spread(values)} | {success:.0%} | {visited:.0f} | {delta} |"
            )


if __name__ == "__main__":
    main()
