"""What the review page shows, read from run folders: plain data for the templates in `templates/review_*.html.j2`.

Two kinds of folder are shown: design runs (`autoreward run`, with an index)
and single trainings (`autoreward train`: `config.json`, `reward.py`,
`check.json`, `training/training.json`, the video under
`training/evaluation/`; see `loop/run_folders.py`). A single training's files
are read through the reader of worker files (no link followed, sizes capped,
JSON checked field by field), since a worker wrote some of them and the
others sit beside them; a folder of neither kind, or a record that cannot be
read, becomes one sentence on the page.

Everything here only reads. Reward code and LLM text are untrusted: the
templates escape them (autoescape on); the only markup made here is
pygments' highlighting (which escapes the code it colours) and the training
curve as SVG (built from numbers alone).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from autoreward.errors import WorkerFileError
from autoreward.loop.frames import frame_paths
from autoreward.loop.recipes import recipe_of
from autoreward.loop.run_store import CANDIDATE_ID, RunStore, run_summaries, run_summary
from autoreward.records import (
    Candidate,
    CheckResult,
    CurvePoint,
    EpisodeResult,
    NormalizedScore,
    Preference,
    PreferenceRequest,
    RoundResult,
    RunSummary,
    TrainingResult,
)
from autoreward.review.report import RECIPE_COLUMNS, outcome, recipe_rows
from autoreward.sandbox import worker_files
from autoreward.serialize import checked
from autoreward.sim.trajectory import summary_text

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]*$")
_FORMATTER = HtmlFormatter(noclasses=True, nowrap=False, style="friendly")
# Where `autoreward train` leaves its records in its run folder (loop/run_folders.py, cli/task_commands.py).
TRAINING_RECORD = "training/training.json"
TRAINING_FOLDER = "training"
PROGRAM_BYTES = 1024 * 1024  # a reward program is a few kilobytes
SHOWN_EPISODES = 20  # held-out episodes listed one by one; the means are over all of them
SHOWN_COMPONENTS = 40


def run_folder(runs_dir: Path, name: str) -> Path | None:
    """The run folder called `name` directly under `runs_dir`, or None: names are checked, never joined blindly,
    and a link in the runs folder is not followed (the list of runs says so)."""
    if not RUN_NAME.match(name) or name in (".", ".."):
        return None
    root = Path(runs_dir).resolve()
    if (root / name).is_symlink():
        return None
    folder = (root / name).resolve()
    if folder.parent != root or not (folder / "config.json").is_file():
        return None
    return folder


def candidate_video(run: Path, candidate_id: str) -> Path | None:
    """A candidate's video (written by its last training, a halving slice's too), when there is one."""
    if CANDIDATE_ID.match(candidate_id) is None:
        return None
    store = RunStore.open(run)
    candidate = store.load_candidate(candidate_id)
    return store.video_path(candidate) if candidate is not None else None


def candidate_frames(run: Path, candidate_id: str) -> list[Path]:
    """The stills of a candidate's video its evaluation worker wrote for a watching judge, in order."""
    if CANDIDATE_ID.match(candidate_id) is None:
        return []
    store = RunStore.open(run)
    candidate = store.load_candidate(candidate_id)
    return _frames_in(store.frames_dir(candidate)) if candidate is not None else []


def _frames_in(folder: Path) -> list[Path]:
    return frame_paths(folder)


def code_html(code: str) -> Markup:
    return Markup(highlight(code, PythonLexer(), _FORMATTER))  # pygments escapes the code


def curve_svg(curve: tuple[CurvePoint, ...], width: int = 360, height: int = 120) -> Markup | None:
    """The training curve as inline SVG: the mean reward per step, and the task score where there is one."""
    if len(curve) < 2:
        return None
    steps = [p.step for p in curve]
    lines = [("reward per step", "#1f77b4", [p.reward_mean for p in curve])]
    scores = [p.fitness for p in curve]
    if all(v is not None for v in scores):
        lines.append(("task score", "#d62728", scores))
    pad = 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}" role="img">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for number, (label, colour, values) in enumerate(lines):
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        points = " ".join(
            f"{pad + (width - 2 * pad) * (s - steps[0]) / ((steps[-1] - steps[0]) or 1):.1f},"
            f"{height - pad - (height - 2 * pad) * (v - low) / span:.1f}"
            for s, v in zip(steps, values)
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
        parts.append(
            f'<text x="{4 + number * width // 2}" y="{height + 12}" font-size="10" fill="{colour}">'
            f"{label}: {low:.3g} to {high:.3g}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass
class AttemptView:
    label: str
    explanation: str
    code: Markup | None
    problem: str | None
    check: str | None
    check_ok: bool
    critique: str | None
    reasons: tuple[str, ...]


@dataclass
class CandidateView:
    id: str
    round: int
    status: str
    outcome: str
    message: str
    attempts: list[AttemptView]
    code: Markup | None
    fitness: float | None
    episode_length: float | None
    success_rate: float | None
    curve: Markup | None
    trajectory: str | None
    video: bool
    screening_agreement: float | None
    screening_p_value: float | None
    frames: int = 0  # stills of its video that a watching judge is shown (frame/<k> on the page)


@dataclass
class RoundView:
    number: int
    candidates: list[CandidateView]
    result: RoundResult | None
    preference: Preference | None
    waiting: PreferenceRequest | None  # the loop waits for a person's preference on these
    choices: list[CandidateView] = field(default_factory=list)  # what the form offers, the best so far first
    pairs: list[tuple[str, str]] = field(default_factory=list)


def candidate_view(run: Path, candidate: Candidate) -> CandidateView:
    attempts = []
    for attempt in candidate.attempts:
        check = attempt.check
        attempts.append(
            AttemptView(
                label="first design" if attempt.number == 0 else f"repair {attempt.number}",
                explanation=attempt.explanation,
                code=code_html(attempt.code) if attempt.code else None,
                problem=attempt.problem,
                check=None if check is None else (check.category.value + ("" if check.ok else f": {check.message}")),
                check_ok=check is not None and check.ok,
                critique=attempt.critique.verdict if attempt.critique else None,
                reasons=attempt.critique.reasons if attempt.critique else (),
            )
        )
    training = candidate.training
    evaluation = training.evaluation if training else None
    return CandidateView(
        id=candidate.id,
        round=candidate.round,
        status=candidate.status,
        outcome=outcome(candidate),
        message=candidate.message,
        attempts=attempts,
        code=code_html(candidate.code) if candidate.code else None,
        fitness=candidate.fitness,
        episode_length=evaluation.length_mean if evaluation else None,
        success_rate=evaluation.success_rate if evaluation else None,
        curve=curve_svg(training.curve) if training else None,
        trajectory=summary_text(evaluation.summary) if evaluation and evaluation.summary else None,
        video=candidate_video(run, candidate.id) is not None,
        screening_agreement=candidate.screening_agreement,
        screening_p_value=candidate.screening_p_value,
        frames=len(_frames_in(RunStore.open(run).frames_dir(candidate))),  # the candidate in hand, not read again
    )


def run_view(run: Path) -> dict:
    """Everything the page of one run shows."""
    store = RunStore.open(run)
    config = store.config()
    candidates = store.candidates()
    views = {c.id: candidate_view(run, c) for c in candidates}
    rounds = []
    for number in range(1, config.loop.rounds + 1):
        members = [views[c.id] for c in candidates if c.round == number]
        result = store.load_round(number)
        try:
            preference = store.load_preference(number)
        except ValueError:
            preference = None
        request = store.load_preference_request(number)
        waiting = request if request is not None and preference is None and result is None else None
        if not members and result is None:
            break
        view = RoundView(number, members, result, preference, waiting)
        if waiting is not None:
            view.choices = [views[i] for i in waiting.candidate_ids if i in views]
            ids = [c.id for c in view.choices]
            view.pairs = [(a, b) for k, a in enumerate(ids) for b in ids[k + 1 :]] if len(ids) <= 5 else []
        rounds.append(view)
    summary = run_summary(run)
    status = summary.status if summary is not None else "unknown"
    final = store.load_final()
    recipes = store.recipe_results()  # the best reward under other recipes (autoreward evaluate)
    return {
        "name": run.name,
        "config": config,
        "task": config.task,
        "status": status,
        "rounds": rounds,
        "final": final,
        "score_proposal": store.load_score_proposal(),
        "views": views,
        "recipe_columns": RECIPE_COLUMNS,
        "recipe_rows": recipe_rows(recipe_of(config), final, recipes) if final is not None and recipes else [],
        "waiting": any(r.waiting for r in rounds),
        "running": final is None and not status.startswith("failed"),
    }


# --- single trainings (`autoreward train`) ---------------------------------------


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


@dataclass
class OtherFolder:
    """A folder under the runs folder that is neither kind of run, and why."""

    name: str
    why: str


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


def runs_index(runs_dir: Path) -> dict:
    """The list of runs: design runs (from their indexes, newest first), single trainings (newest first), and a
    sentence for each other folder there."""
    # The index lists what a glob finds, links too; the page follows none, so a link is one line among the others.
    designs: list[RunSummary] = [row for row in run_summaries(runs_dir) if not Path(row.path).is_symlink()]
    listed = {row.name for row in designs}
    trainings: list[tuple[float, TrainingRow]] = []
    others: list[OtherFolder] = []
    try:
        entries = sorted(Path(runs_dir).iterdir())
    except OSError:
        entries = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name in listed:  # .<run>.creating: a design run being made
            continue
        try:
            mode = os.lstat(entry).st_mode
        except OSError:
            continue
        if stat.S_ISLNK(mode):
            others.append(OtherFolder(entry.name, "a link, which this page does not follow"))
            continue
        if not stat.S_ISDIR(mode):
            continue
        if (entry / "index.sqlite").exists():
            others.append(OtherFolder(entry.name, "its index.sqlite is not a design run's index"))
            continue
        if entry.name == "baselines" and not (entry / "config.json").exists():
            others.append(OtherFolder(entry.name, "the cached human and sparse baselines (autoreward baseline)"))
            continue
        try:
            setup = training_setup(entry)
        except FileNotFoundError:
            others.append(OtherFolder(entry.name, "no config.json: neither a design run nor a single training"))
            continue
        except (WorkerFileError, OSError) as error:
            others.append(OtherFolder(entry.name, str(error)))
            continue
        made = os.lstat(entry / "config.json").st_mtime
        trainings.append((made, training_row(entry, setup)))
    trainings.sort(key=lambda pair: pair[0], reverse=True)
    return {"runs": designs, "trainings": [row for _, row in trainings], "others": others}


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
