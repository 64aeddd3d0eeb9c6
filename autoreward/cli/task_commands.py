"""The commands on one task: `tasks`, `describe`, `check`, `train`, `baseline`."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from autoreward.cli.options import (
    TRAINING_PANEL,
    AddressOption,
    AlgoOption,
    DeviceOption,
    EnvsOption,
    EvalEpisodesOption,
    ExecutorOption,
    RunsDirOption,
    SeedOption,
    SimulatorOption,
    StepsOption,
    TasksDirOption,
    _clear_errors,
    _executor,
    _jail,
    _progress_bars,
    _resolve_task,
    _training_options,
    _until_interrupted,
    app,
    console,
    errors,
    panel,
    signal_name,
)
from autoreward.config import CheckOptions, Task
from autoreward.errors import AutorewardError
from autoreward.loop.run_folders import new_run_dir
from autoreward.serialize import write_json


@app.command()
def tasks(tasks_dir: Optional[list[Path]] = TasksDirOption) -> None:
    """List the tasks: those shipped with autoreward and those in --tasks-dir."""
    from autoreward.task.files import load_tasks

    broken: dict[str, str] = {}
    with _clear_errors():
        found = load_tasks(tuple(tasks_dir or ()), broken)
    table = Table("id", "environment", "fitness", "description", show_lines=False)
    for task in found.values():
        table.add_row(task.id, task.env_id, task.fitness.description if task.fitness else "-", task.description)
    console.print(table)
    for error in broken.values():  # the others are listed all the same
        errors.print(f"[bold yellow]not listed:[/] {escape(error)}", highlight=False)


@app.command()
def describe(
    env_or_task: str = typer.Argument(..., help="A task id, a task file or a gymnasium environment id."),
    tasks_dir: Optional[list[Path]] = TasksDirOption,
) -> None:
    """Print the State stub a reward designer reads, generated from the environment's MuJoCo model."""
    from autoreward.task.describe import describe_task

    with _clear_errors():
        text = describe_task(_resolve_task(env_or_task, tasks_dir, probe=False))  # it makes the environment itself
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
    import tempfile

    from autoreward.contract.checker import check_program, check_task

    with _clear_errors():
        chosen = _resolve_task(task, tasks_dir)
        code = _read_reward(reward)
        check_task(chosen, jail=_jail())  # the task's own fitness and extras, before the reward is judged
        with tempfile.TemporaryDirectory(prefix="autoreward-check-") as folder:
            result = check_program(chosen, code, Path(folder), jail=_jail())
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
    from autoreward.contract.checker import check_program, check_task
    from autoreward.loop.baselines import load_or_train_baselines
    from autoreward.loop.training import train as train_policy

    with _clear_errors():
        chosen = _resolve_task(task, tasks_dir)
        code = _read_reward(reward)
        check_task(chosen, jail=_jail())  # before a run folder is made
        config = _training_options(chosen, algo, steps, seed, envs, eval_episodes, simulator, videos, device, executor)
        runner = _executor(executor, address)
        run = new_run_dir(runs_dir, chosen.id, "train", seed)
        (run / "reward.py").write_text(code)
        write_json(
            run / "config.json",
            {"command": shlex.join(sys.argv), "task": chosen, "training": config, "reward_file": str(reward)},
        )
        console.print(f"run folder: [bold]{run}[/]")
        jail = _jail()
        result = check_program(chosen, code, run / "check", CheckOptions(training_batch_size=config.n_envs), jail=jail)
        write_json(run / "check.json", result)
        _print_check(result)
        if not result.ok:
            raise typer.Exit(1)
        stopped = lambda number: f"interrupted ({signal_name(number)}): the training in {run} was stopped"  # noqa: E731
        with _until_interrupted(runner, stopped), _progress_bars() as handle:
            trained = train_policy(chosen, config, run / "training", code, lambda d: handle("reward", d), jail, runner)
            normalized = None
            if baselines:
                reference = load_or_train_baselines(chosen, config, runs_dir, handle, jail, runner)
                normalized = reference.normalize(trained.evaluation.fitness_mean, chosen.fitness.higher_is_better)
        summary = {
            "task": chosen.id,
            "fitness": trained.evaluation.fitness_mean,
            "fitness_std": trained.evaluation.fitness_std,
            "fitness_description": chosen.fitness.description if chosen.fitness else None,
            "success_rate": trained.evaluation.success_rate,
            "episode_length": trained.evaluation.length_mean,
            "steps": trained.steps,
            "steps_per_second": trained.steps_per_second,
            "video": f"training/{trained.video}" if trained.video else None,
            "normalized": normalized,
        }
        write_json(run / "result.json", summary)
    _print_result(chosen, trained, normalized)


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
    from autoreward.contract.checker import check_task
    from autoreward.loop.baselines import load_or_train_baselines

    with _clear_errors():
        chosen = _resolve_task(task, tasks_dir)
        config = _training_options(chosen, algo, steps, seed, envs, eval_episodes)
        jail, runner = _jail(), _executor(executor, address)
        check_task(chosen, jail=jail)
        stopped = lambda number: f"interrupted ({signal_name(number)}): the baselines were not trained"  # noqa: E731
        with _until_interrupted(runner, stopped), _progress_bars() as handle:
            result = load_or_train_baselines(chosen, config, runs_dir, handle, jail, runner)
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
