"""The commands on one task: `tasks`, `describe`, `check`, `train`, `preview`, `baseline`, each a call of `autoreward.api`."""

from __future__ import annotations

import json
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from autoreward import api
from autoreward.cli.options import (
    TRAINING_PANEL,
    AddressOption,
    AlgoOption,
    ConsoleProgress,
    DeviceOption,
    EnvsOption,
    EvalEpisodesOption,
    ExecutorOption,
    HorizonOption,
    NoiseOption,
    RunsDirOption,
    SamplesOption,
    SeedOption,
    SimulatorOption,
    StepsOption,
    TasksDirOption,
    _clear_errors,
    _progress_bars,
    _runner,
    _until_interrupted,
    app,
    console,
    errors,
    panel,
    signal_name,
)
from autoreward.config import Task
from autoreward.errors import AutorewardError


@app.command()
def tasks(tasks_dir: Optional[list[Path]] = TasksDirOption) -> None:
    """List the tasks: those shipped with autoreward and those in --tasks-dir."""
    with _clear_errors():
        found, broken = api.list_tasks(tasks_dir or ())
    table = Table("id", "environment", "fitness", "description", show_lines=False)
    for task in found.values():
        table.add_row(task.id, task.env_id, task.fitness.description if task.fitness else "-", task.description)
    console.print(table)
    for error in broken.values():  # the others are listed all the same
        errors.print(f"[bold yellow]not listed:[/] {escape(error)}", highlight=False)


@app.command()
def describe(
    env_or_task: str = typer.Argument(..., help="A task id, a task file or a gymnasium environment id."),
    form: str = typer.Option("reward", "--form", help="End with this form's function: reward, progress, latent."),
    tasks_dir: Optional[list[Path]] = TasksDirOption,
) -> None:
    """Print the State stub a reward designer reads, generated from the environment's MuJoCo model."""
    with _clear_errors():
        task = api.load_task(env_or_task, tasks_dir or (), probe=False)  # describe makes the environment
        text = api.describe(task, form)
    sys.stdout.write(text)


def _read_reward(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise AutorewardError(f"cannot read reward file {path}: {error.strerror}") from None


def _print_check(result) -> None:
    if result.ok:
        console.print(f"[green]check passed[/]: {result.message}")
    else:
        errors.print(f"[bold red]check failed ({result.category.value})[/]: {result.message}", highlight=False)


@app.command()
def check(
    task: str = typer.Argument(..., help="A task id, a task file or an environment id."),
    reward: Path = typer.Option(..., "--reward", help="The reward program to check."),
    tasks_dir: Optional[list[Path]] = TasksDirOption,
) -> None:
    """Check a reward program against the contract, on states of the task's environment."""
    with _clear_errors():
        chosen = api.load_task(task, tasks_dir or ())
        result = api.check(chosen, _read_reward(reward))  # the task's own fitness and extras first
    _print_check(result)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def train(
    task: str = typer.Argument(..., help="A task id, a task file or an environment id."),
    reward: Path = typer.Option(..., "--reward", help="The reward program to train on."),
    algo: Optional[str] = AlgoOption,
    steps: Optional[int] = StepsOption,
    seed: int = SeedOption,
    envs: Optional[int] = EnvsOption,
    eval_episodes: Optional[int] = EvalEpisodesOption,
    simulator: str = SimulatorOption,
    device: str = DeviceOption,
    baselines: bool = typer.Option(
        False,
        "--baselines/--no-baselines",
        help="Normalize its score by both baselines, trained or reused (default: off).",
        **panel(TRAINING_PANEL),
    ),
    executor: Optional[str] = ExecutorOption,
    address: Optional[str] = AddressOption,
    videos: bool = typer.Option(
        True,
        "--videos/--no-videos",
        help="Film its first held-out episode (default: on).",
        **panel(TRAINING_PANEL),
    ),
    runs_dir: Path = RunsDirOption,
    tasks_dir: Optional[list[Path]] = TasksDirOption,
) -> None:
    """Train a policy on a reward program and score it on held-out episodes."""
    with _clear_errors():
        chosen = api.load_task(task, tasks_dir or ())
        code = _read_reward(reward)
        # Every flag's mistake is one sentence here, before Ray is started.
        api.training_config(chosen, steps, seed, algo, envs, eval_episodes, simulator, device, videos, executor)
        runner = _runner(executor, address)
        with _one_program_run("training", runner, reward) as shared:
            trained = api.train(
                chosen,
                code,
                steps=steps,
                seed=seed,
                algo=algo,
                envs=envs,
                eval_episodes=eval_episodes,
                simulator=simulator,
                device=device,
                videos=videos,
                baselines=baselines,
                runs_dir=runs_dir,
                **shared,
            )
    _print_result(chosen, trained.training, trained.normalized)


@contextmanager
def _one_program_run(what: str, runner, reward: Path):
    """What `train` and `preview` do at the terminal around their API call: progress bars, the run folder said
    once made, Ctrl-C that names it, and a failed check as exit status 1 (its verdict printed already).
    Yields the keyword arguments both calls take for it."""
    folders: list[Path] = []

    def made(folder: Path) -> None:
        folders.append(folder)
        console.print(f"run folder: [bold]{folder}[/]")

    def stopped(number: int) -> str:
        where = f" in {folders[0]}" if folders else ""
        return f"interrupted ({signal_name(number)}): the {what}{where} was stopped"

    with _until_interrupted(runner, stopped), _progress_bars() as bars:
        try:
            yield {
                "runner": runner.reporting_to(ConsoleProgress(bars)),
                "reward_file": str(reward),
                "command": shlex.join(sys.argv),
                "on_folder": made,
                "on_checked": _print_check,
            }
        except api.RewardCheckFailed:
            raise typer.Exit(1) from None


def _print_result(task: Task, trained, normalized) -> None:
    evaluation = trained.evaluation
    table = Table(title=f"{task.id}: {len(evaluation.episodes)} held-out episodes", show_header=False)
    if evaluation.fitness_mean is not None:
        table.add_row(
            "fitness", f"{evaluation.fitness_mean:.4g} ± {evaluation.fitness_std:.2g}  ({task.fitness.description})"
        )
    if evaluation.success_rate is not None:
        table.add_row("success rate", f"{evaluation.success_rate:.0%} (threshold {task.success_threshold:g})")
    table.add_row("episode length", f"{evaluation.length_mean:.1f}")
    table.add_row("training", f"{trained.steps} steps at {trained.steps_per_second:.0f} steps/s")
    if trained.form_report is not None:
        table.add_row("form", trained.form_report.describe())
    if trained.video is not None:
        table.add_row("video", f"training/{trained.video}")
    elif trained.video_error is not None:
        table.add_row("video", f"none: {trained.video_error}")
    if normalized is not None:
        score = "undefined (human and sparse tie)" if normalized.score is None else f"{normalized.score:.3f}"
        table.add_row(
            "human-normalized",
            f"{score}  (human {normalized.fitness_human:.4g}, sparse {normalized.fitness_sparse:.4g})",
        )
    console.print(table)


@app.command()
def preview(
    task: str = typer.Argument(..., help="A task id, a task file or an environment id (with a MuJoCo model)."),
    reward: Path = typer.Option(..., "--reward", help="The reward program to preview."),
    horizon: Optional[int] = HorizonOption,
    samples: Optional[int] = SamplesOption,
    noise: Optional[float] = NoiseOption,
    seed: int = SeedOption,
    videos: bool = typer.Option(
        True, "--videos/--no-videos", help="Film the episode (default: on).", **panel(TRAINING_PANEL)
    ),
    runs_dir: Path = RunsDirOption,
    tasks_dir: Optional[list[Path]] = TasksDirOption,
) -> None:
    """Watch what a reward asks for in one episode, its actions planned by model-predictive control, no training."""
    with _clear_errors():
        chosen = api.load_task(task, tasks_dir or ())
        code = _read_reward(reward)
        with _one_program_run("preview", _runner(None, None), reward) as shared:
            previewed = api.preview(
                chosen,
                code,
                horizon=horizon,
                samples=samples,
                noise=noise,
                seed=seed,
                videos=videos,
                runs_dir=runs_dir,
                **shared,
            )
    _print_preview(chosen, previewed)


def _print_preview(task: Task, previewed) -> None:
    result = previewed.preview
    episode = result.evaluation.episodes[0]
    table = Table(title=f"{task.id}: one episode planned on the reward", show_header=False)
    if episode.fitness is not None:
        table.add_row("task score", f"{episode.fitness:.4g}  ({task.fitness.description})")
    if result.evaluation.success_rate is not None:
        table.add_row(
            "success", f"{'yes' if result.evaluation.success_rate else 'no'} (threshold {task.success_threshold:g})"
        )
    table.add_row("episode length", f"{episode.length}")
    planner = result.planner
    table.add_row(
        "planning",
        f"{result.planning_seconds:.1f} s ({planner.samples} rollouts of {planner.horizon} steps a step)",
    )
    parts = ", ".join(f"{name} {value:.4g}" for name, value in episode.component_returns.items())
    table.add_row("reward return", f"{episode.reward_return:.4g}" + (f"  ({parts})" if parts else ""))
    if result.video is not None:
        table.add_row("video", f"preview/{result.video}")
    elif result.video_error is not None:
        table.add_row("video", f"none: {result.video_error}")
    console.print(table)


@app.command()
def baseline(
    task: str = typer.Argument(..., help="A task id or a task file."),
    algo: Optional[str] = AlgoOption,
    steps: Optional[int] = StepsOption,
    seed: int = SeedOption,
    envs: Optional[int] = EnvsOption,
    eval_episodes: Optional[int] = EvalEpisodesOption,
    executor: Optional[str] = ExecutorOption,
    address: Optional[str] = AddressOption,
    runs_dir: Path = RunsDirOption,
    tasks_dir: Optional[list[Path]] = TasksDirOption,
) -> None:
    """Train the human baseline (the task's own reward) and the sparse one (its fitness alone)."""
    with _clear_errors():
        chosen = api.load_task(task, tasks_dir or ())
        config = api.training_config(chosen, steps, seed, algo, envs, eval_episodes)  # a bad flag, before Ray
        runner = _runner(executor, address)
        stopped = lambda number: f"interrupted ({signal_name(number)}): the baselines were not trained"  # noqa: E731
        with _until_interrupted(runner, stopped), _progress_bars() as bars:
            shown = runner.reporting_to(ConsoleProgress(bars))
            result = api.baselines(chosen, steps, seed, algo, envs, eval_episodes, runs_dir, runner=shown)
    table = Table(title=f"{chosen.id} baselines ({config.algo}, {config.steps} steps, seed {seed})")
    table.add_column("reward")
    table.add_column("fitness")
    table.add_column("episode length")
    for name, trained in (("human", result.human), ("sparse", result.sparse)):
        evaluation = trained.evaluation
        table.add_row(
            name, f"{evaluation.fitness_mean:.4g} ± {evaluation.fitness_std:.2g}", f"{evaluation.length_mean:.1f}"
        )
    console.print(table)
    console.print(
        json.dumps({"human": result.human.evaluation.fitness_mean, "sparse": result.sparse.evaluation.fitness_mean})
    )
