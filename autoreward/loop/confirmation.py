"""A pick that survives other seeds: before a round's best becomes the best so far, the candidates within noise
of it are trained on more seeds and the pick is by their mean (`--confirm-seeds K`).

One seed's held-out score is a draw: on the early-stopping benchmark's pool the best of one seed was not the
best over three on two seeds of three (bench/README.md). The candidates that could be the best are those whose
score on the round's seed is within `CONFIRM_MARGIN` of the best's; each is trained again on the run's next K
seeds (jailed, resumable: `round_<n>/<candidate>/confirm_seed_<s>/`), and the round's best is the one with the
best mean over its K + 1 seeds. `bench/confirm_seeds.py` measures how often that matches the many-seed best,
and at what cost.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from autoreward.config import LoopConfig, Task, TrainingConfig
from autoreward.loop.parallel import parallel_map
from autoreward.loop.run_store import RunStore
from autoreward.loop.runner import Runner
from autoreward.loop.training import train_or_reuse
from autoreward.records import Candidate

# Within this share of the best's |score| a candidate may be the best on another seed: the seed-to-seed spread
# of the benchmark pool's top candidates was 3 to 30% of their mean (bench/README.md, early_stopping.py).
CONFIRM_MARGIN = 0.25


def near_the_best(scores: dict[str, float], higher_is_better: bool, margin: float = CONFIRM_MARGIN) -> list[str]:
    """The ids whose score is within `margin` x |best| of the best one, the best first; ties keep their order."""
    if not scores:
        return []
    sign = 1.0 if higher_is_better else -1.0
    ranked = sorted(scores, key=lambda key: -sign * scores[key])  # sorted() is stable: ties keep their order
    best = scores[ranked[0]]
    return [key for key in ranked if sign * (best - scores[key]) <= margin * abs(best)]


def confirmed_pick(scores_by_seed: dict[str, list[float]], higher_is_better: bool) -> str:
    """The id with the best mean score over its seeds; a tie goes to the one named first."""
    sign = 1.0 if higher_is_better else -1.0
    return max(
        scores_by_seed, key=lambda key: (sign * float(np.mean(scores_by_seed[key])), -list(scores_by_seed).index(key))
    )


@dataclass
class SeedConfirmation:
    """Trains the candidates within noise of a round's best on `loop.confirm_seeds` more seeds."""

    task: Task
    loop: LoopConfig
    store: RunStore
    training_config: Callable[..., TrainingConfig]  # (seed=) -> the run's config for a training on that seed
    runner: Runner

    def confirm(self, round_number: int, candidates: list[Candidate]) -> list[Candidate]:
        """The round's candidates, those near its best with `confirmation` (their scores on the extra seeds)."""
        fully = [c for c in candidates if c.status == "trained" and c.fitness is not None and c.stopped_at is None]
        near = near_the_best({c.id: c.fitness for c in fully}, self.task.fitness.higher_is_better)
        if self.loop.confirm_seeds < 1 or len(near) < 2:
            return candidates  # one candidate alone at the top: nothing to confirm
        seeds = [self.loop.seed + k for k in range(1, self.loop.confirm_seeds + 1)]
        self.runner.progress.note(
            f"round {round_number}: {', '.join(near)} within {CONFIRM_MARGIN:.0%} of the best; "
            f"training each on seeds {seeds} before picking by the mean"
        )
        by_id = {c.id: c for c in candidates}
        jobs = [(by_id[i], seed) for i in near for seed in seeds]
        scores = parallel_map(lambda job: self._score(*job), jobs, self.loop.workers)
        confirmed = {i: tuple(s for (c, _), s in zip(jobs, scores) if c.id == i) for i in near}
        updated = []
        for candidate in candidates:
            if candidate.id in confirmed:
                candidate = replace(candidate, confirmation=confirmed[candidate.id])
                self.store.save_candidate(candidate)
            updated.append(candidate)
        return updated

    def _score(self, candidate: Candidate, seed: int) -> float:
        folder = self.store.candidate_dir(candidate.id, candidate.round) / f"confirm_seed_{seed}"
        done = train_or_reuse(
            self.task,
            replace(self.training_config(seed=seed), video=False),  # no one watches these
            folder,
            candidate.code,
            lambda data: self.runner.progress.training(f"{candidate.id} s{seed}", data),
            runner=self.runner,
        )
        return done.evaluation.fitness_mean
