"""Pre-screening a reward without training it (CARD's trajectory preference evaluation).

Trained candidates of earlier rounds leave held-out episodes behind: a
sample of their transitions (`transitions.npz`) and each episode's task
score. Before a new candidate is trained, a worker scores those stored
transitions with its reward. If the reward ranks the episodes against their
task scores — for most pairs of clearly different episodes, it prefers the
worse one — the candidate is not trained, and the designer is told which
pairs it got wrong. A reward that reverses the task ranks nearly every pair
the wrong way round and is caught this way for the cost of a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autoreward.config import Task, WorkerLimits
from autoreward.errors import Interrupted, WorkerFileError
from autoreward.records import Candidate
from autoreward.sandbox import worker_files
from autoreward.sandbox.executor import LocalExecutor, WorkerExecutor
from autoreward.sandbox.worker_files import ARRAYS_BYTES
from autoreward.sandbox.jail import Jail
from autoreward.serialize import from_dict, to_dict
from autoreward.task.files import task_folders, task_python_paths


@dataclass(frozen=True)
class LabelledEpisode:
    """One stored held-out episode: where its transitions are, which episode it is, and its task score."""

    source: str  # the candidate that produced it
    file: str
    episode: int
    fitness: float


@dataclass(frozen=True)
class Screening:
    """How well a reward's ranking of stored episodes agrees with their task scores."""

    agreement: float | None  # fraction of clearly different pairs ranked the right way; None: too few pairs
    pairs: int
    wrong: tuple[str, ...]  # the worst mistakes, in words, for the designer

    def rejects(self, threshold: float) -> bool:
        return self.agreement is not None and self.agreement < threshold


def labelled_episodes(candidates: list[Candidate], transitions_of) -> list[LabelledEpisode]:
    """The stored episodes of trained candidates (those halving stopped early too), with their task scores.

    `transitions_of(candidate)` is the file of its (last) training's held-out transitions."""
    found = []
    for candidate in candidates:
        if candidate.status != "trained" or candidate.training is None:
            continue
        path = transitions_of(candidate)
        if not path.exists():
            continue
        for index, episode in enumerate(candidate.training.evaluation.episodes):
            if episode.fitness is not None:
                found.append(LabelledEpisode(candidate.id, str(path), index, episode.fitness))
    return found


def screen(
    task: Task,
    code: str,
    episodes: list[LabelledEpisode],
    output_dir: Path,
    jail: Jail | None = None,
    min_gap_fraction: float = 0.1,
    shown: int = 3,
    executor: WorkerExecutor | None = None,
) -> Screening:
    """Score the stored episodes with `code` in a worker and compare the ranking with the task scores."""
    output_dir = Path(output_dir).resolve()
    inputs = output_dir / "inputs"
    worker_files.clear_folder(inputs)
    files = sorted({e.file for e in episodes})
    # The worker sees only its own folder (the jail), wherever it runs (an executor may move the folder to
    # another machine), so its inputs are copied there and named relative to it: its working folder.
    local = {}
    for number, file in enumerate(files):  # through the reader of worker files: a link there is not followed
        local[file] = f"{inputs.name}/{number}.npz"
        try:
            worker_files.copy_file(Path(file).parent, Path(file).name, output_dir / local[file], ARRAYS_BYTES)
        except (WorkerFileError, OSError) as error:
            return Screening(None, 0, (f"could not read the stored episodes: {error}",))
    payload = {"task": to_dict(task), "code": code, "files": [local[f] for f in files]}
    limits = WorkerLimits(wall_seconds=300.0, idle_seconds=60.0, memory_bytes=4 * 1024**3)
    jail = (jail if jail is not None else Jail.detect()).showing(task_folders(task)).importing(task_python_paths(task))
    outcome = (executor or LocalExecutor()).run("score", payload, output_dir, limits, None, jail)
    if outcome.status == "interrupted":
        raise Interrupted(message=outcome.message)
    if outcome.status != "ok":
        return Screening(None, 0, (f"could not score the stored episodes: {outcome.message}",))
    try:  # {file: {episode: mean reward per step}}, from a worker that ran the program: checked, every entry there
        means = worker_files.checked_result(outcome.result, dict[str, dict[str, float]], "the scoring worker's result")
        rewards = np.array([means[local[e.file]][str(e.episode)] for e in episodes])
    except (WorkerFileError, KeyError) as error:
        return Screening(None, 0, (f"could not score the stored episodes: {error}",))
    fitness = np.array([e.fitness for e in episodes])
    if task.fitness is not None and not task.fitness.higher_is_better:
        fitness = -fitness
    return _agreement(episodes, rewards, fitness, min_gap_fraction, shown)


def _agreement(episodes, rewards: np.ndarray, fitness: np.ndarray, min_gap_fraction: float, shown: int) -> Screening:
    spread = float(fitness.max() - fitness.min()) if len(fitness) else 0.0
    gap = min_gap_fraction * spread
    right, mistakes = 0, []
    for i in range(len(episodes)):
        for j in range(i + 1, len(episodes)):
            if abs(fitness[i] - fitness[j]) <= gap or spread == 0.0:
                continue  # a near tie says nothing about the ranking
            better, worse = (i, j) if fitness[i] > fitness[j] else (j, i)
            if rewards[better] > rewards[worse]:
                right += 1
            else:
                mistakes.append((fitness[better] - fitness[worse], better, worse))
    pairs = right + len(mistakes)
    if pairs < 3:
        return Screening(None, pairs, ())
    mistakes.sort(reverse=True)
    wrong = tuple(
        f"it gave {episodes[w].source}'s episode {episodes[w].episode} (task score {fitness[w]:.3g}) a higher mean "
        f"reward per step ({rewards[w]:.3g}) than {episodes[b].source}'s episode {episodes[b].episode} "
        f"(task score {fitness[b]:.3g}, reward {rewards[b]:.3g})"
        for _, b, w in mistakes[:shown]
    )
    return Screening(right / pairs, pairs, wrong)


# --- inside the worker -------------------------------------------------------


def run_score_job(payload: dict[str, Any], output_dir: Path, channel) -> dict:
    """Mean reward per step of every stored episode, under the program in the payload."""
    from autoreward.contract import reward_program
    from autoreward.sim.observation_state import state_layout
    from autoreward.sim.state import read_only
    from autoreward.task.files import make_env

    task = from_dict(Task, payload["task"])
    function = reward_program.load(payload["code"])
    env = make_env(task)
    layout = state_layout(env, extras=task.extras)
    env.close()
    result = {}
    for file in payload["files"]:
        with np.load(file) as stored:
            before = {name: stored[f"before.{name}"].astype(np.float64) for name in layout.shapes}
            after = {name: stored[f"after.{name}"].astype(np.float64) for name in layout.shapes}
            action, episode = stored["action"], stored["episode"]
        if getattr(layout, "discrete_actions", 0):  # stored as float32 like the rest; the reward sees integers
            action = action.astype(np.int64)
        channel.progress(stage="scoring", file=file)
        total, _ = function(layout.state(before), read_only(action), layout.state(after))
        total = np.asarray(total, dtype=np.float64)
        result[file] = {str(e): float(total[episode == e].mean()) for e in np.unique(episode)}
    return result
