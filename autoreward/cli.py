"""The `autoreward` command line."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .errors import AutorewardError
from .records import Budget, Task, write_json
from .runs import DEFAULT_RUNS_DIR, new_run_dir

app = typer.Typer(
    help="Turn a task written in words into reward code that trains a good policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

TasksDirOption = typer.Option(None, "--tasks-dir", help="A folder of extra task files (repeatable).")
RunsDirOption = typer.Option(DEFAULT_RUNS_DIR, "--runs-dir", help="Where run folders are written.")
ExecutorOption = typer.Option(None, "--executor", help="Where trainings run: local (this machine, the default) or ray.")
AddressOption = typer.Option(None, "--address",
                             help="With --executor ray: the cluster's head, HOST:6379 (default: a private Ray here).")


@contextmanager
def _clear_errors():
    """Print autoreward's own errors as one sentence and exit non-zero; let real bugs show their traceback."""
    try:
        yield
    except AutorewardError as error:
        errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)  # a message's [x] is text
        raise typer.Exit(2) from None


def _jail():
    """The worker jail for this command, built once: AUTOREWARD_JAIL is on (default), off or require."""
    from .jail import SETTING_VARIABLE, Jail

    return Jail.from_setting(os.environ.get(SETTING_VARIABLE))


def _executor(name: str | None, address: str | None):
    """The executor the command line asked for, connected (a Ray cluster is joined here, once)."""
    from .executor import connect_executor

    return connect_executor(name or "local", address)


def _resolve_task(name: str, tasks_dir: list[Path] | None) -> Task:
    from .tasks import find_task, task_from_sentence

    if "-v" in name and not name.endswith(".toml") and name[0].isupper():  # an environment id such as Hopper-v5
        return task_from_sentence(name, f"(no task given: environment {name} only)")
    return find_task(name, tuple(tasks_dir or ()))


@app.command()
def tasks(tasks_dir: Optional[list[Path]] = TasksDirOption) -> None:
    """List the tasks: those shipped with autoreward and those in --tasks-dir."""
    from .tasks import load_tasks

    with _clear_errors():
        found = load_tasks(tuple(tasks_dir or ()))
    table = Table("id", "environment", "fitness", "description", show_lines=False)
    for task in found.values():
        table.add_row(task.id, task.env_id, task.fitness.description if task.fitness else "-", task.description)
    console.print(table)


@app.command()
def describe(env_or_task: str = typer.Argument(..., help="A task id, a task file or a gymnasium environment id."),
             tasks_dir: Optional[list[Path]] = TasksDirOption) -> None:
    """Print the State stub a reward designer reads, generated from the environment's MuJoCo model."""
    from .describe import describe_task

    with _clear_errors():
        text = describe_task(_resolve_task(env_or_task, tasks_dir))
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
def check(task: str = typer.Argument(..., help="A task id, a task file or an environment id."),
          reward: Path = typer.Option(..., "--reward", help="The reward program to check."),
          tasks_dir: Optional[list[Path]] = TasksDirOption) -> None:
    """Check a reward program against the contract, on states of the task's environment."""
    import tempfile

    from .checker import check_program

    with _clear_errors():
        chosen = _resolve_task(task, tasks_dir)
        code = _read_reward(reward)
        with tempfile.TemporaryDirectory(prefix="autoreward-check-") as folder:
            result = check_program(chosen, code, Path(folder), jail=_jail())
    _print_check(result)
    if not result.ok:
        raise typer.Exit(1)


@contextmanager
def _progress_bars():
    """A rich progress display and a handler that feeds worker progress messages into it."""
    progress = Progress(
        TextColumn("{task.description:<12}"), BarColumn(), TextColumn("{task.completed:>8.0f}/{task.total:.0f} steps"),
        TextColumn("{task.fields[fitness]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console,
    )
    bars: dict[str, int] = {}

    def handle(name: str, data: dict) -> None:
        if name not in bars:
            bars[name] = progress.add_task(name, total=data.get("total") or 1, fitness="")
        if data.get("stage") in ("training", "curve"):
            fitness = data.get("fitness")
            shown = "" if fitness is None else f"fitness {fitness:.3g}"
            progress.update(bars[name], completed=data["step"], **({"fitness": shown} if fitness is not None else {}))
        elif data.get("stage") in ("evaluating", "video"):
            progress.update(bars[name], description=f"{name} ({'eval' if data['stage'] == 'evaluating' else 'video'})")

    with progress:
        yield handle


def _budget_options(base: Budget, algo, steps, envs, eval_episodes) -> Budget:
    """`base` with the training flags that were given, each checked."""
    if algo is not None and algo not in ("ppo", "sac"):
        raise AutorewardError(f"--algo must be 'ppo' or 'sac', got {algo!r}")
    for name, value in (("--steps", steps), ("--envs", envs), ("--eval-episodes", eval_episodes)):
        if value is not None and value < 1:
            raise AutorewardError(f"{name} must be at least 1, got {value}")
    changes = {"algo": algo, "steps": steps, "n_envs": envs, "eval_episodes": eval_episodes}
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


SIMULATORS = ("gymnasium", "batched", "warp")
SimulatorOption = typer.Option(
    "gymnasium", "--simulator",
    help="Where training environments are simulated: gymnasium (one gymnasium environment each), batched "
         "(all of them as one batch on the CPU, same trajectories) or warp (MuJoCo Warp worlds on the GPU, "
         "or Warp's CPU device; float32). A task a batched simulator cannot run falls back to gymnasium.",
)  # fmt: skip


DeviceOption = typer.Option(
    "cpu", "--device",
    help="Where policies learn and, with --simulator warp, where the worlds are stepped: cpu, or cuda (cuda:N) "
         "for a GPU. Use many environments there (--envs 1024 or more).",
)  # fmt: skip


def _device_option(device: str, executor: str | None = None) -> str:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise AutorewardError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    if executor == "ray" and device.startswith("cuda:"):
        raise AutorewardError(f"--device {device} names a GPU of one machine; on a Ray cluster give --device cuda, "
                              "and Ray gives each training a free GPU of some node")  # fmt: skip
    return device


def _simulator_option(simulator: str) -> str:
    if simulator not in SIMULATORS:
        raise AutorewardError(f"--simulator must be gymnasium, batched or warp, got {simulator!r}")
    return simulator


def _training_options(chosen: Task, algo, steps, seed, envs, eval_episodes, simulator: str = "gymnasium",
                      videos: bool = True, device: str = "cpu", executor: str | None = None):  # fmt: skip
    from .training import TrainingConfig

    budget = _budget_options(chosen.budget, algo, steps, envs, eval_episodes)
    return TrainingConfig.from_budget(budget, seed=seed, simulator=_simulator_option(simulator), video=videos,
                                      device=_device_option(device, executor))  # fmt: skip


@app.command()
def train(
    task: str = typer.Argument(..., help="A task id, a task file or an environment id."),
    reward: Path = typer.Option(..., "--reward", help="The reward program to train on."),
    algo: Optional[str] = typer.Option(None, "--algo", help="ppo or sac (default: the task's budget)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Environment steps of training."),
    seed: int = typer.Option(0, "--seed"),
    envs: Optional[int] = typer.Option(None, "--envs", help="Environments stepped together."),
    eval_episodes: Optional[int] = typer.Option(None, "--eval-episodes", help="Held-out episodes to score on."),
    simulator: str = SimulatorOption,
    device: str = DeviceOption,
    baselines: bool = typer.Option(False, "--baselines/--no-baselines",
                                   help="Also train (or reuse) the human and sparse baselines and report the "
                                        "human-normalized score."),
    executor: Optional[str] = ExecutorOption,
    address: Optional[str] = AddressOption,
    videos: bool = typer.Option(True, "--videos/--no-videos",
                                help="Render the policy's first held-out episode to training/video.mp4."),
    runs_dir: Path = RunsDirOption,
    tasks_dir: Optional[list[Path]] = TasksDirOption,
) -> None:
    """Train a policy on a reward program and score it on held-out episodes."""
    from .baselines import load_or_train_baselines
    from .checker import check_program
    from .training import train as train_policy

    with _clear_errors():
        chosen = _resolve_task(task, tasks_dir)
        code = _read_reward(reward)
        config = _training_options(chosen, algo, steps, seed, envs, eval_episodes, simulator, videos, device, executor)
        runner = _executor(executor, address)
        run = new_run_dir(runs_dir, chosen.id, "train", seed)
        (run / "reward.py").write_text(code)
        write_json(run / "config.json", {"command": shlex.join(sys.argv), "task": chosen, "training": config,
                                         "reward_file": str(reward)})
        console.print(f"run folder: [bold]{run}[/]")
        jail = _jail()
        result = check_program(chosen, code, run / "check", jail=jail)
        write_json(run / "check.json", result)
        _print_check(result)
        if not result.ok:
            raise typer.Exit(1)
        with _progress_bars() as handle:
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
        table.add_row("fitness", f"{evaluation.fitness_mean:.4g} ± {evaluation.fitness_std:.2g}  ({task.fitness.description})")
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
        table.add_row("human-normalized", f"{score}  (human {normalized.fitness_human:.4g}, sparse {normalized.fitness_sparse:.4g})")
    console.print(table)


@app.command()
def baseline(
    task: str = typer.Argument(..., help="A task id or a task file."),
    algo: Optional[str] = typer.Option(None, "--algo"),
    steps: Optional[int] = typer.Option(None, "--steps"),
    seed: int = typer.Option(0, "--seed"),
    envs: Optional[int] = typer.Option(None, "--envs"),
    eval_episodes: Optional[int] = typer.Option(None, "--eval-episodes"),
    executor: Optional[str] = ExecutorOption,
    address: Optional[str] = AddressOption,
    runs_dir: Path = RunsDirOption,
    tasks_dir: Optional[list[Path]] = TasksDirOption,
) -> None:
    """Train the human baseline (the task's own reward) and the sparse one (its fitness alone)."""
    from .baselines import load_or_train_baselines

    with _clear_errors():
        chosen = _resolve_task(task, tasks_dir)
        config = _training_options(chosen, algo, steps, seed, envs, eval_episodes)
        jail, runner = _jail(), _executor(executor, address)
        with _progress_bars() as handle:
            result = load_or_train_baselines(chosen, config, runs_dir, handle, jail, runner)
    table = Table(title=f"{chosen.id} baselines ({config.algo}, {config.steps} steps, seed {seed})")
    table.add_column("reward")
    table.add_column("fitness")
    table.add_column("episode length")
    for name, trained in (("human", result.human), ("sparse", result.sparse)):
        evaluation = trained.evaluation
        table.add_row(name, f"{evaluation.fitness_mean:.4g} ± {evaluation.fitness_std:.2g}", f"{evaluation.length_mean:.1f}")
    console.print(table)
    console.print(json.dumps({"human": result.human.evaluation.fitness_mean,
                              "sparse": result.sparse.evaluation.fitness_mean}))


# The design commands (run, runs, show, export, demo) register on `app` when imported.
from . import cli_design  # noqa: E402,F401


def main() -> None:  # pragma: no cover - the console script calls app() directly
    app()
