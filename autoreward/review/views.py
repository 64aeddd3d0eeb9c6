"""What the review page shows, read from run folders: plain data for the templates in `templates/review_*.html.j2`.

Three kinds of folder are shown: design runs (`autoreward run`, with an
index), read here, and the single runs of one reward program, single
trainings (`autoreward train`) and previews (`autoreward preview`), read in
`single_runs.py` as files a worker may have written; any other folder
becomes one sentence on the list of runs.

Everything here only reads. Reward code and LLM text are untrusted: the
templates escape them (autoescape on); the only markup inserted as is comes
from `markup.py`.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup

from autoreward.errors import WorkerFileError
from autoreward.loop.frames import frame_paths
from autoreward.loop.recipes import recipe_of
from autoreward.loop.run_store import CANDIDATE_ID, RunStore, run_summaries, run_summary
from autoreward.records import Candidate, Preference, PreferenceRequest, RoundResult, RunSummary
from autoreward.review.markup import code_html, curve_svg
from autoreward.review.report import RECIPE_COLUMNS, outcome, recipe_rows
from autoreward.review.single_runs import PreviewRow, TrainingRow, single_run_row, single_run_setup
from autoreward.sim.trajectory import summary_text

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]*$")


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


# --- the list of runs ---------------------------------------------------------------


@dataclass
class OtherFolder:
    """A folder under the runs folder that is neither kind of run, and why."""

    name: str
    why: str


def runs_index(runs_dir: Path) -> dict:
    """The list of runs: design runs (from their indexes, newest first), single trainings and previews (each
    newest first), and a sentence for each other folder there."""
    # The index lists what a glob finds, links too; the page follows none, so a link is one line among the others.
    designs: list[RunSummary] = [row for row in run_summaries(runs_dir) if not Path(row.path).is_symlink()]
    listed = {row.name for row in designs}
    single_runs: list[tuple[float, TrainingRow | PreviewRow]] = []
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
            setup = single_run_setup(entry)
        except FileNotFoundError:
            others.append(OtherFolder(entry.name, "no config.json: not a design run, a single training or a preview"))
            continue
        except (WorkerFileError, OSError) as error:
            others.append(OtherFolder(entry.name, str(error)))
            continue
        made = os.lstat(entry / "config.json").st_mtime
        single_runs.append((made, single_run_row(entry, setup)))
    single_runs.sort(key=lambda pair: pair[0], reverse=True)
    return {
        "runs": designs,
        "trainings": [row for _, row in single_runs if isinstance(row, TrainingRow)],
        "previews": [row for _, row in single_runs if isinstance(row, PreviewRow)],
        "others": others,
    }
