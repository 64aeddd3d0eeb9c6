"""Early stopping of weak candidates by successive halving (Jamieson and Talwalkar, 2016).

Every candidate of a round is trained for a slice of the budget; the best
1/eta of them, by `rung_score`, are trained on to the next rung, and so on
until the last survivor reaches the whole budget. A rung's slice
continues the previous one (`training.train(resume_from=...)`), so a
survivor's training costs no more steps than training it whole.

A rung ranks by the task score of the policy as it explores (sampling its
actions, as it does in training), not by the deterministic held-out one
that picks the round's best: early in training the deterministic policy
often stands still while the stochastic one already moves, so the held-out
scores of a first rung are all about equal and rank noise (bench/README.md
has the figures). Those exploring episodes are played by the evaluation
worker, where no candidate code runs (`Evaluation.exploring_fitness_mean`):
the training episodes' own scores come from the worker that ran the reward
program, and a program that got out of the restricted Python could make
them say anything, and so keep its slice alive at others' expense. Runs
recorded before the split have no exploring score and rank by the training
episodes, as they did.

`schedule` is the plan, a pure function; `rung_score` and `survivors` the pick at a rung;
`successive_halving` the driver, over any `TrainSlice`; `train_slice` the
slice of one candidate in its folder, read from there when it already ran.

Folders: the slice that reaches the whole budget writes `training/`, as an
unsliced training does; an earlier slice writes `training_<steps>/`. A slice
whose worker failed leaves `failed.txt` there, so that a resumed run ranks
every rung exactly as the interrupted one did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from autoreward.config import Task, TrainingConfig
from autoreward.errors import WorkerError
from autoreward.loop.parallel import parallel_map
from autoreward.loop.run_store import slice_folder
from autoreward.loop.runner import Runner
from autoreward.loop.training import finished_training, train_or_reuse
from autoreward.records import Candidate, TrainingResult

DEFAULT_ETA = 2
FAILURE_FILE = "failed.txt"


@dataclass(frozen=True)
class Rung:
    """One rung of a schedule: `candidates` candidates trained up to `steps` steps in all."""

    steps: int
    candidates: int


def schedule(candidates: int, budget: int, eta: int = DEFAULT_ETA) -> tuple[Rung, ...]:
    """The rungs of successive halving for `candidates` candidates with `budget` steps each.

    Each rung keeps floor(n / eta) of its n candidates (at least one) until one
    is left; the last rung trains that one to `budget`, the rung before to
    budget / eta, and so on. One candidate gets one rung, the whole budget.
    """
    if eta < 2:
        raise ValueError(f"the reduction factor eta must be at least 2, got {eta}")
    if candidates < 1:
        return ()
    counts = [candidates]
    while counts[-1] > 1:
        counts.append(max(1, counts[-1] // eta))
    last = len(counts) - 1
    return tuple(Rung(steps=max(1, budget // eta ** (last - r)), candidates=n) for r, n in enumerate(counts))


def planned_steps(rungs: Sequence[Rung]) -> int:
    """Training steps the schedule spends in all (before PPO rounds each slice up to whole rollouts)."""
    total, reached = 0, 0
    for rung in rungs:
        total += rung.candidates * (rung.steps - reached)
        reached = rung.steps
    return total


def survivors(scores: Sequence[float | None], keep: int, higher_is_better: bool = True) -> list[int]:
    """Indices of the `keep` best scores, in their original order. None (no score) never survives;
    equal scores go to the earlier index, so a resumed run keeps the same ones."""
    sign = 1.0 if higher_is_better else -1.0
    scored = [i for i, s in enumerate(scores) if s is not None]
    ranked = sorted(scored, key=lambda i: (-sign * scores[i], i))
    return sorted(ranked[:keep])


def rung_score(candidate: Candidate) -> float | None:
    """What a rung ranks a trained candidate by: the task score of its policy exploring, played by the
    evaluation worker (`Evaluation.exploring_fitness_mean`).

    A slice recorded before there was one ranks as it did then, by its training episodes late in the slice:
    the mean over the episodes that ended in the second half of its steps (its curve points there, weighted
    by their episodes); when none ended there, the last point's score of episodes still running; when the
    curve has no score at all, the held-out task score.
    """
    training = candidate.training
    if training is None:
        return None
    if training.evaluation.exploring_fitness_mean is not None:
        return training.evaluation.exploring_fitness_mean
    late = [p for p in training.curve if p.step > training.steps / 2 and p.fitness is not None]
    ended = [p for p in late if p.episodes > 0 and not p.fitness_partial]
    if ended:
        return sum(p.fitness * p.episodes for p in ended) / sum(p.episodes for p in ended)
    if late:
        return late[-1].fitness
    return candidate.fitness


# (candidate, steps its previous slice reached or None, steps to reach) -> the candidate, trained or failed
TrainSlice = Callable[[Candidate, "int | None", int], Candidate]


def successive_halving(
    candidates: Sequence[Candidate],
    rungs: Sequence[Rung],
    train_slice: TrainSlice,
    higher_is_better: bool = True,
    workers: int = 1,
    record: Callable[[Candidate], None] = lambda candidate: None,
    score: Callable[[Candidate], float | None] = rung_score,
) -> list[Candidate]:
    """Run `rungs` over `candidates`; return them in the same order, each as it ended.

    Those that reached the last rung are "trained" with the whole budget;
    those stopped at a rung are "trained" too, with that rung's training and
    `stopped_at` set to its steps (and `record`ed as soon as they are
    stopped); those whose training failed are "training_failed". A rung keeps
    the best by `score`. Slices of a rung run `workers` at a time; rungs one
    after the other.
    """
    ended: dict[str, Candidate] = {}
    alive = list(candidates)
    reached: int | None = None
    for number, rung in enumerate(rungs):
        trained = parallel_map(lambda c: train_slice(c, reached, rung.steps), alive, workers)
        for candidate in trained:
            if candidate.status != "trained":
                ended[candidate.id] = candidate
        ranked = [c for c in trained if c.status == "trained"]
        if number == len(rungs) - 1:
            ended.update((c.id, c) for c in ranked)
            break
        keep = rungs[number + 1].candidates
        scores = [score(c) for c in ranked]
        kept = set(survivors(scores, keep, higher_is_better))
        alive = [c for i, c in enumerate(ranked) if i in kept]
        for index, candidate in enumerate(ranked):
            if index not in kept:
                stopped = replace(
                    candidate,
                    stopped_at=rung.steps,
                    message=f"stopped by successive halving after {rung.steps} steps: its exploring policy's "
                    f"task score {_shown(scores[index])} was not among the best {keep} of {len(ranked)}",
                )
                record(stopped)
                ended[candidate.id] = stopped
        reached = rung.steps
        if not alive:
            break
    return [ended.get(c.id, c) for c in candidates]


def train_slice(
    task: Task,
    config: TrainingConfig,
    candidate_dir: Path,
    code: str,
    start: int | None,
    until: int,
    on_progress: Callable[[dict], None] | None = None,
    *,
    runner: Runner,
    on_start: Callable[[], None] = lambda: None,
) -> TrainingResult:
    """One candidate's slice up to `until` steps, continuing the slice that reached `start` (None: from scratch).

    Reads the slice's record first: a finished slice is returned, a failed
    one raises its WorkerError again, and only a missing one starts a worker
    (`on_start` is called then). A failure is recorded before it is raised.
    """
    folder = slice_folder(candidate_dir, until, config.steps)
    if finished_training(folder) is None and (folder / FAILURE_FILE).exists():
        raise WorkerError((folder / FAILURE_FILE).read_text())
    previous = slice_folder(candidate_dir, start, config.steps) if start is not None else None
    try:
        return train_or_reuse(
            task,
            config,
            folder,
            code,
            on_progress,
            runner=runner,
            on_start=on_start,
            until=until,
            resume_from=previous,
        )
    except WorkerError as error:
        (folder / FAILURE_FILE).write_text(str(error))
        raise


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
