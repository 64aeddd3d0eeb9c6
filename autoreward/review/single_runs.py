"""A single run of one reward program on the review page: a training (`autoreward train`) or a preview
(`autoreward preview`), read from its run folder as plain data for the list of runs and for
`templates/review_training.html.j2` or `review_preview.html.j2`.

Both kinds of folder hold `config.json` (the task, the reward file, the command, and the training's or the
planner's settings), `reward.py`, `check.json`, the record its program run left in its own subfolder
(`training/training.json`: a `TrainingResult`; `preview/preview.json`: a `loop.preview.PreviewResult`) and
the video under `<subfolder>/evaluation/` (see `api.train`, `api.preview`, `loop/run_folders.py`). Workers
wrote some of these files and the others sit beside them, so every one is read through the reader of worker
files (no link followed, sizes capped, JSON checked field by field, NaN refused), and every number a worker
gave is checked for plausibility as well; a record that cannot be read, or cannot be a real one, is one
sentence on the page and in the list, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from autoreward.config import PlannerSettings
from autoreward.errors import WorkerFileError
from autoreward.loop.preview import PreviewResult
from autoreward.records import CheckResult, EpisodeResult, NormalizedScore, TrainingResult
from autoreward.review.markup import code_html, curve_svg
from autoreward.sandbox import worker_files
from autoreward.serialize import checked
from autoreward.sim.trajectory import summary_text

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

    @property
    def kind(self) -> "SingleRunKind":
        return TRAINING


@dataclass(frozen=True)
class PreviewSetup:
    """The part of a preview's `config.json` the page shows, each field checked (`serialize.checked`)."""

    command: str | None  # None from the Python API (autoreward.preview), which names neither unless told
    task_id: str
    description: str
    fitness_description: str | None
    success_threshold: float | None
    planner: PlannerSettings
    seed: int
    reward_file: str | None

    def __post_init__(self):
        problem = self.planner.problem()
        if problem is not None:
            raise ValueError(problem)

    @property
    def kind(self) -> "SingleRunKind":
        return PREVIEW


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


@dataclass
class PreviewRow:
    """A preview as the list of runs shows it."""

    name: str
    task: str
    reward_file: str | None
    planner: PlannerSettings
    seed: int
    fitness: float | None
    status: str


def _implausible_training(training: TrainingResult) -> str | None:
    """Why a training's record, finite as it is, cannot be a real one (a worker's numbers are never trusted)."""
    evaluation = training.evaluation
    if training.steps < 0 or evaluation.length_mean < 0:
        return "negative steps or episode length"
    if evaluation.success_rate is not None and not 0.0 <= evaluation.success_rate <= 1.0:
        return f"a success rate of {evaluation.success_rate:g}, outside 0 to 1"
    if any(point.step < 0 for point in training.curve):
        return "a curve point at a negative step"
    return None


def _implausible_preview(preview: PreviewResult) -> str | None:
    """Why a preview's record, finite as it is, cannot be a real one."""
    evaluation = preview.evaluation
    if len(evaluation.episodes) != 1:
        return f"{len(evaluation.episodes)} episodes, where a preview plays one"
    if preview.steps < 0 or evaluation.length_mean < 0 or evaluation.episodes[0].length < 0:
        return "negative steps or episode length"
    if evaluation.success_rate is not None and not 0.0 <= evaluation.success_rate <= 1.0:
        return f"a success rate of {evaluation.success_rate:g}, outside 0 to 1"
    if preview.planning_seconds < 0 or preview.replay_seconds < 0:
        return "a negative time to plan or to replay"
    return None


@dataclass(frozen=True)
class SingleRunKind:
    """What sets a training's folder apart from a preview's: where its program run leaves its record and video,
    the record's type and how to tell a real one, and the words of its status."""

    name: str  # "training" or "preview": its page is templates/review_<name>.html.j2
    noun: str  # what the page calls one, in its sentences
    folder: str  # the subfolder its record and its video are in
    record: str  # its record, relative to the run folder
    record_type: type
    implausible: Callable[[Any], str | None]
    done: str  # its status once the record is there
    underway: str  # its status once the program passed its check, before the record

    def video_in(self, record: TrainingResult | PreviewResult | None) -> PurePosixPath | None:
        """The video a record names, relative to the run folder: only a relative .mp4 path that stays in the
        subfolder, else none."""
        if record is None or not record.video:
            return None
        name = PurePosixPath(record.video)
        if name.is_absolute() or ".." in name.parts or name.suffix != ".mp4":
            return None
        return PurePosixPath(self.folder) / name


# Where `autoreward train` and `autoreward preview` leave their records (api.train, api.preview).
TRAINING = SingleRunKind(
    "training",
    "a single training",
    "training",
    "training/training.json",
    TrainingResult,
    _implausible_training,
    "trained",
    "checked, no training record yet (training, or stopped before it ended)",
)
PREVIEW = SingleRunKind(
    "preview",
    "a preview",
    "preview",
    "preview/preview.json",
    PreviewResult,
    _implausible_preview,
    "previewed",
    "checked, no preview record yet (planning, or stopped before it ended)",
)
NEITHER = "neither a design run's, a single training's nor a preview's"


def single_run_setup(folder: Path) -> TrainingSetup | PreviewSetup:
    """What `autoreward train` or `autoreward preview` wrote in `folder/config.json`; `WorkerFileError` with one
    sentence when it is neither's (a design run's config, a link, a broken file), `FileNotFoundError` when
    there is none."""
    data = worker_files.read_record(folder, "config.json", Any)  # JSON, no link followed, NaN refused
    if not isinstance(data, dict) or "reward_file" not in data:
        raise WorkerFileError(f"{folder.name}/config.json is {NEITHER}")
    task = data["task"] if isinstance(data.get("task"), dict) else {}
    fitness = task["fitness"] if isinstance(task.get("fitness"), dict) else {}
    shown = {
        "command": data.get("command"),
        "task_id": task.get("id"),
        "description": task.get("description", ""),
        "fitness_description": fitness.get("description"),
        "success_threshold": task.get("success_threshold"),
        "reward_file": data.get("reward_file"),
    }
    if isinstance(data.get("training"), dict):
        training = data["training"]
        cls = TrainingSetup
        shown |= {key: training.get(key) for key in ("algo", "steps", "seed", "n_envs")}
    elif isinstance(data.get("planner"), dict):
        cls = PreviewSetup
        shown |= {"planner": data["planner"], "seed": data.get("seed")}
    else:
        raise WorkerFileError(f"{folder.name}/config.json is {NEITHER}")
    try:
        return checked(cls, shown)
    except (ValueError, TypeError) as error:
        noun = TRAINING.noun if cls is TrainingSetup else PREVIEW.noun
        raise WorkerFileError(f"{folder.name}/config.json is not {noun}'s: {error}") from None


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


@dataclass
class _RunState:
    check: CheckResult | None
    record: TrainingResult | PreviewResult | None
    problem: str | None  # the one sentence shown when a record cannot be read
    status: str


def _run_state(folder: Path, kind: SingleRunKind) -> _RunState:
    check, check_problem = _optional_record(folder, "check.json", CheckResult)
    record, problem = _optional_record(folder, kind.record, kind.record_type)
    implausible = kind.implausible(record) if record is not None else None
    if implausible is not None:
        problem = f"{folder.name}/{kind.record} is not a real {kind.name}'s record: {implausible}"
        record = None
    if record is not None:
        status = kind.done
    elif problem is not None or check_problem is not None:
        problem = problem or check_problem
        status = "broken record"
    elif check is not None and not check.ok:
        first_line = check.message.splitlines()[0][:200] if check.message else ""
        status = f"check failed ({check.category.value}): {first_line}"
    elif check is None:
        status = "not checked yet (starting, or stopped before its check)"
    else:
        status = kind.underway
    return _RunState(check, record, problem, status)


def single_run_row(folder: Path, setup: TrainingSetup | PreviewSetup) -> TrainingRow | PreviewRow:
    state = _run_state(folder, setup.kind)
    record = state.record
    status = state.status if state.problem is None else f"{state.status}: {state.problem}"
    fitness = record.evaluation.fitness_mean if record is not None else None
    if isinstance(setup, PreviewSetup):
        return PreviewRow(folder.name, setup.task_id, setup.reward_file, setup.planner, setup.seed, fitness, status)
    return TrainingRow(
        name=folder.name,
        task=setup.task_id,
        reward_file=setup.reward_file,
        steps=record.steps if record is not None else setup.steps,
        seed=record.seed if record is not None else setup.seed,
        fitness=fitness,
        status=status,
    )


def _video(folder: Path, kind: SingleRunKind, record: TrainingResult | PreviewResult | None) -> Path | None:
    relative = kind.video_in(record)
    return folder / relative if relative is not None and worker_files.is_present(folder, relative) else None


def single_run_video(folder: Path) -> Path | None:
    """The video a training's evaluation or a preview's replay rendered, when there is one: a relative .mp4 path
    from its record, inside its subfolder, a regular file with no link on the way. Raises `WorkerFileError` when
    the folder is neither a training's nor a preview's."""
    kind = single_run_setup(folder).kind
    return _video(folder, kind, _run_state(folder, kind).record)


@dataclass
class ComponentReturn:
    name: str
    mean: float  # its return per episode, averaged over the episodes that report it
    low: float
    high: float


def component_returns(episodes: tuple[EpisodeResult, ...]) -> list[ComponentReturn]:
    names = list(dict.fromkeys(name for episode in episodes for name in episode.component_returns))
    rows = []
    for name in names[:SHOWN_COMPONENTS]:
        values = [e.component_returns[name] for e in episodes if name in e.component_returns]
        rows.append(ComponentReturn(name, sum(values) / len(values), min(values), max(values)))
    return rows


def _reward_code(folder: Path) -> tuple[str | None, str | None]:
    """(the copy of the reward program, None), or (None, why it cannot be shown)."""
    try:
        return worker_files.read_bytes(folder, "reward.py", PROGRAM_BYTES).decode("utf-8", "replace"), None
    except FileNotFoundError:
        return None, f"{folder.name} holds no reward.py"
    except (WorkerFileError, OSError) as error:
        return None, str(error)


def _normalized(folder: Path) -> NormalizedScore | None:
    result, _ = _optional_record(folder, "result.json", Any)
    if isinstance(result, dict) and isinstance(result.get("normalized"), dict):
        try:
            return checked(NormalizedScore, result["normalized"])
        except (ValueError, TypeError):
            return None  # the training's own record is shown all the same
    return None


def single_run_view(folder: Path) -> dict:
    """Everything the page of one training or one preview shows; its "kind" names the page's template. Raises
    `WorkerFileError` (one sentence) when the folder is neither a training's nor a preview's."""
    setup = single_run_setup(folder)
    kind = setup.kind
    state = _run_state(folder, kind)
    code, code_problem = _reward_code(folder)
    record = state.record
    evaluation = record.evaluation if record is not None else None
    episodes = evaluation.episodes if evaluation is not None else ()
    names = list(dict.fromkeys(name for episode in episodes for name in episode.component_returns))
    shown = {
        "kind": kind.name,
        "name": folder.name,
        "setup": setup,
        "status": state.status,
        "problem": state.problem,
        "check": state.check,
        "code": code_html(code) if code is not None else None,
        "code_problem": code_problem,
        "evaluation": evaluation,
        "components": component_returns(episodes),
        "more_components": max(0, len(names) - SHOWN_COMPONENTS),
        "trajectory": summary_text(evaluation.summary) if evaluation is not None and evaluation.summary else None,
        "video": _video(folder, kind, record) is not None,
        "running": record is None and state.problem is None and (state.check is None or state.check.ok),
    }
    if kind is PREVIEW:
        return shown | {"preview": record, "episode": episodes[0] if episodes else None}
    return shown | {
        "training": record,
        "curve": curve_svg(record.curve) if record is not None else None,
        "episodes": episodes[:SHOWN_EPISODES],
        "episode_columns": names[:SHOWN_COMPONENTS],
        "normalized": _normalized(folder),
    }
