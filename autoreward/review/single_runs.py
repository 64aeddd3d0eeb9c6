"""A single training (`autoreward train`) on the review page: plain data for `templates/review_training.html.j2`
and the list of runs, read from its run folder.

Its folder holds `config.json`, `reward.py`, `check.json`, `training/training.json` and the video under
`training/evaluation/` (see `loop/run_folders.py`). Its files are read through the reader of worker files (no
link followed, sizes capped, JSON checked field by field), since a worker wrote some of them and the others
sit beside them; a record that cannot be read becomes one sentence on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from autoreward.errors import WorkerFileError
from autoreward.records import CheckResult, EpisodeResult, NormalizedScore, TrainingResult
from autoreward.review.markup import code_html, curve_svg
from autoreward.sandbox import worker_files
from autoreward.serialize import checked
from autoreward.sim.trajectory import summary_text

# Where `autoreward train` leaves its records in its run folder (loop/run_folders.py, cli/task_commands.py).
TRAINING_RECORD = "training/training.json"
TRAINING_FOLDER = "training"
PROGRAM_BYTES = 1024 * 1024  # a reward program is a few kilobytes
SHOWN_EPISODES = 20  # held-out episodes listed one by one; the means are over all of them
SHOWN_COMPONENTS = 40


@dataclass(frozen=True)
class TrainingSetup:
    """The part of a single training's `config.json` the page shows, each field checked (`serialize.checked`)."""

    command: str | None  # None from the Python API (autoreward.train), which names neither unless told
    task_id: str
    description: str
    fitness_description: str | None
    success_threshold: float | None
    algo: str
    steps: int
    seed: int
    n_envs: int
    reward_file: str | None

    def __post_init__(self):
        if self.steps < 0 or self.n_envs < 1:
            raise ValueError(f"{self.steps} steps on {self.n_envs} environments is not a training")


@dataclass
class TrainingRow:
    """A single training as the list of runs shows it."""

    name: str
    task: str
    reward_file: str | None
    steps: int
    seed: int
    fitness: float | None
    status: str


def training_setup(folder: Path) -> TrainingSetup:
    """What `autoreward train` wrote in `folder/config.json`; `WorkerFileError` with one sentence when it is not
    a single training's (a design run's config, a link, a broken file), `FileNotFoundError` when there is none."""
    data = worker_files.read_record(folder, "config.json", Any)  # JSON, no link followed, NaN refused
    if not isinstance(data, dict) or not isinstance(data.get("training"), dict) or "reward_file" not in data:
        raise WorkerFileError(f"{folder.name}/config.json is neither a design run's nor a single training's")
    task = data["task"] if isinstance(data.get("task"), dict) else {}
    fitness = task["fitness"] if isinstance(task.get("fitness"), dict) else {}
    training = data["training"]
    shown = {
        "command": data.get("command"),
        "task_id": task.get("id"),
        "description": task.get("description", ""),
        "fitness_description": fitness.get("description"),
        "success_threshold": task.get("success_threshold"),
        "algo": training.get("algo"),
        "steps": training.get("steps"),
        "seed": training.get("seed"),
        "n_envs": training.get("n_envs"),
        "reward_file": data.get("reward_file"),
    }
    try:
        return checked(TrainingSetup, shown)
    except (ValueError, TypeError) as error:
        raise WorkerFileError(f"{folder.name}/config.json is not a single training's: {error}") from None


def _optional_record(folder: Path, relative: str, cls) -> tuple[Any, str | None]:
    """(the record, None), (None, None) when the file is not there yet, or (None, why) when it cannot be read."""
    try:
        return worker_files.read_record(folder, relative, cls), None
    except FileNotFoundError:
        return None, None
    except WorkerFileError as error:
        return None, str(error)
    except OSError as error:
        return None, f"{folder.name}/{relative} cannot be read: {error.strerror}"


def _implausible(training: TrainingResult) -> str | None:
    """Why a training's record, finite as it is, cannot be a real one (a worker's numbers are never trusted)."""
    evaluation = training.evaluation
    if training.steps < 0 or evaluation.length_mean < 0:
        return "negative steps or episode length"
    if evaluation.success_rate is not None and not 0.0 <= evaluation.success_rate <= 1.0:
        return f"a success rate of {evaluation.success_rate:g}, outside 0 to 1"
    if any(point.step < 0 for point in training.curve):
        return "a curve point at a negative step"
    return None


@dataclass
class _TrainingState:
    check: CheckResult | None
    training: TrainingResult | None
    problem: str | None  # the one sentence shown when a record cannot be read
    status: str


def _training_state(folder: Path) -> _TrainingState:
    check, check_problem = _optional_record(folder, "check.json", CheckResult)
    training, problem = _optional_record(folder, TRAINING_RECORD, TrainingResult)
    implausible = _implausible(training) if training is not None else None
    if implausible is not None:
        problem = f"{folder.name}/{TRAINING_RECORD} is not a real training's record: {implausible}"
        training = None
    if training is not None:
        status = "trained"
    elif problem is not None or check_problem is not None:
        problem = problem or check_problem
        status = "broken record"
    elif check is not None and not check.ok:
        first_line = check.message.splitlines()[0][:200] if check.message else ""
        status = f"check failed ({check.category.value}): {first_line}"
    elif check is None:
        status = "not checked yet (starting, or stopped before its check)"
    else:
        status = "checked, no training record yet (training, or stopped before it ended)"
    return _TrainingState(check, training, problem, status)


def training_record(folder: Path) -> TrainingResult | None:
    """A single training's record, checked; None while there is none, or when it cannot be read."""
    return _training_state(folder).training


def training_row(folder: Path, setup: TrainingSetup) -> TrainingRow:
    state = _training_state(folder)
    training = state.training
    return TrainingRow(
        name=folder.name,
        task=setup.task_id,
        reward_file=setup.reward_file,
        steps=training.steps if training is not None else setup.steps,
        seed=training.seed if training is not None else setup.seed,
        fitness=training.evaluation.fitness_mean if training is not None else None,
        status=state.status if state.problem is None else f"{state.status}: {state.problem}",
    )


def training_video(folder: Path, training: TrainingResult | None) -> Path | None:
    """The video a single training's evaluation rendered, when there is one: a relative .mp4 path from its record,
    inside the training's folder, a regular file with no link on the way."""
    if training is None or not training.video:
        return None
    name = PurePosixPath(training.video)
    if name.is_absolute() or ".." in name.parts or name.suffix != ".mp4":
        return None
    relative = PurePosixPath(TRAINING_FOLDER) / name
    return folder / relative if worker_files.is_present(folder, relative) else None


@dataclass
class ComponentReturn:
    name: str
    mean: float  # its return per held-out episode, averaged over the episodes that report it
    low: float
    high: float


def component_returns(episodes: tuple[EpisodeResult, ...]) -> list[ComponentReturn]:
    names = list(dict.fromkeys(name for episode in episodes for name in episode.component_returns))
    rows = []
    for name in names[:SHOWN_COMPONENTS]:
        values = [e.component_returns[name] for e in episodes if name in e.component_returns]
        rows.append(ComponentReturn(name, sum(values) / len(values), min(values), max(values)))
    return rows


def training_view(folder: Path) -> dict:
    """Everything the page of one single training shows. Raises `WorkerFileError` (one sentence) when the folder
    is not a single training's."""
    setup = training_setup(folder)
    state = _training_state(folder)
    try:
        code = worker_files.read_bytes(folder, "reward.py", PROGRAM_BYTES).decode("utf-8", "replace")
        code_problem = None
    except FileNotFoundError:
        code, code_problem = None, f"{folder.name} holds no reward.py"
    except (WorkerFileError, OSError) as error:
        code, code_problem = None, str(error)
    result, _ = _optional_record(folder, "result.json", Any)
    normalized = None
    if isinstance(result, dict) and isinstance(result.get("normalized"), dict):
        try:
            normalized = checked(NormalizedScore, result["normalized"])
        except (ValueError, TypeError):
            normalized = None  # the training's own record is shown all the same
    training = state.training
    evaluation = training.evaluation if training is not None else None
    episodes = evaluation.episodes if evaluation is not None else ()
    names = list(dict.fromkeys(name for episode in episodes for name in episode.component_returns))
    return {
        "name": folder.name,
        "setup": setup,
        "status": state.status,
        "problem": state.problem,
        "check": state.check,
        "code": code_html(code) if code is not None else None,
        "code_problem": code_problem,
        "training": training,
        "evaluation": evaluation,
        "curve": curve_svg(training.curve) if training is not None else None,
        "components": component_returns(episodes),
        "more_components": max(0, len(names) - SHOWN_COMPONENTS),
        "episodes": episodes[:SHOWN_EPISODES],
        "episode_columns": names[:SHOWN_COMPONENTS],
        "trajectory": summary_text(evaluation.summary) if evaluation is not None and evaluation.summary else None,
        "video": training_video(folder, training) is not None,
        "normalized": normalized,
        "running": training is None and state.problem is None and (state.check is None or state.check.ok),
    }
