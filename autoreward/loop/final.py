"""The final evaluation: the best reward re-trained over several seeds and scored against the baselines.

Each seed's training is read from its folder when it already finished (a
resumed run); the seed and budget of the round's own training reuse it. The
human-normalized score is that of the mean fitness against the mean
baselines, not the mean of per-seed scores: one seed whose baselines nearly
tie would otherwise swamp the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from autoreward.config import LoopConfig, Task, TrainingConfig
from autoreward.loop.baselines import load_or_train_baselines
from autoreward.loop.parallel import parallel_map
from autoreward.loop.run_store import RunStore
from autoreward.loop.runner import Runner
from autoreward.loop.training import train_or_reuse
from autoreward.records import Baselines, Candidate, FinalResult, NormalizedScore, TrainingResult


@dataclass
class FinalEvaluation:
    """Re-trains a run's best reward on `loop.final_seeds` seeds and scores it against each seed's baselines."""

    task: Task
    loop: LoopConfig
    store: RunStore
    runs_dir: Path  # where baselines are cached, shared by runs
    training_config: Callable[..., TrainingConfig]  # (seed=, steps=) -> the run's config for that training
    runner: Runner
    # Where each seed's training goes (default: the store's final/seed_<k>); another recipe has its own folders,
    # and never reuses the round's training, whose config `training_config` does not describe.
    seed_dir: Callable[[int], Path] | None = None
    label: str = "final"  # what the progress lines call this evaluation

    def run(self, best: Candidate) -> FinalResult:
        steps = self.loop.final_steps or self.loop.budget.steps
        seeds = [self.loop.seed + k for k in range(self.loop.final_seeds)]
        self.runner.progress.note(
            f"{self.label}: re-training {best.id} on seeds {seeds} and scoring it against the baselines"
        )

        def one_seed(seed: int) -> tuple[TrainingResult, Baselines | None]:
            config = self.training_config(seed=seed, steps=steps)
            training = self._training(best, config)
            if self.task.fitness is None:
                return training, None  # no fitness, so no sparse baseline and no normalized score
            baselines = load_or_train_baselines(self.task, config, self.runs_dir, self.runner, f" s{seed}")
            return training, baselines

        outcomes = parallel_map(one_seed, seeds, self.loop.workers)
        return final_result(self.task, best.id, seeds, outcomes)

    def _training(self, best: Candidate, config: TrainingConfig) -> TrainingResult:
        if self.seed_dir is None and config == self.training_config() and best.training is not None:
            return best.training  # this seed and budget is the round's own training
        folder = (self.seed_dir or self.store.final_seed_dir)(config.seed)
        started = []

        def start() -> None:
            started.append(True)
            self.store.log_event(f"{self.label} training started", candidate=best.id, seed=config.seed)

        training = train_or_reuse(
            self.task,
            config,
            folder,
            best.code,
            lambda data: self.runner.progress.training(f"{self.label} s{config.seed}", data),
            runner=self.runner,
            on_start=start,
        )
        if started:  # a training read back from an interrupted run finished there, and said so then
            self.store.log_event(f"{self.label} training finished", candidate=best.id, seed=config.seed)
        return training


def final_result(
    task: Task, candidate_id: str, seeds: list[int], outcomes: list[tuple[TrainingResult, Baselines | None]]
) -> FinalResult:
    """The final scores of one candidate from its trainings (and, with a fitness, their baselines) per seed."""
    fitness = [t.evaluation.fitness_mean for t, _ in outcomes]
    successes = [t.evaluation.success_rate for t, _ in outcomes if t.evaluation.success_rate is not None]
    result = FinalResult(
        candidate_id=candidate_id,
        seeds=tuple(seeds),
        fitness=tuple(fitness),
        scores=tuple(None for _ in seeds),
        success_rate=float(np.mean(successes)) if successes else None,
    )
    if task.fitness is None:
        return result
    higher = task.fitness.higher_is_better
    scores = [b.normalize(f, higher).score for f, (_, b) in zip(fitness, outcomes)]
    humans = [b.human.evaluation.fitness_mean for _, b in outcomes]
    sparses = [b.sparse.evaluation.fitness_mean for _, b in outcomes]
    human, sparse = float(np.mean(humans)), float(np.mean(sparses))
    first = outcomes[0][1]  # with one seed, a baseline's spread is that of its held-out episodes
    human_spread = float(np.std(humans)) if len(humans) > 1 else first.human.evaluation.fitness_std or 0.0
    sparse_spread = float(np.std(sparses)) if len(sparses) > 1 else first.sparse.evaluation.fitness_std or 0.0
    overall = NormalizedScore.compute(float(np.mean(fitness)), human, sparse, higher)
    gap = abs(human - sparse)
    return replace(
        result,
        scores=tuple(scores),
        fitness_mean=float(np.mean(fitness)),
        fitness_std=float(np.std(fitness)),
        score_mean=overall.score,
        score_std=float(np.std(fitness)) / gap if overall.score is not None else None,  # the spread, on that scale
        human_fitness=human,
        sparse_fitness=sparse,
        human_spread=human_spread,
        sparse_spread=sparse_spread,
        human_source=first.human_source,
        human_worse=(human < sparse) if higher else (human > sparse),
    )
