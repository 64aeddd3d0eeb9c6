"""The training rewards of the progress and latent forms (`contract/forms.py`), kept per training.

Each wraps a program's terms function (`(state, action, next_state) -> (sum, {name: (N,)})`, already watched
by the passive check) and is called by `RewardVecEnv` with the task score's sparse reward;
`episodes_ended` gives it each finished episode's task score.

- `ProgressCounts` (Sarukkai et al., ProgressCounts): the sparse reward plus `beta / sqrt(n(bin))`, where a
  bin is the progress vector cut into `bins` levels per dimension and n counts the training's visits to it,
  this one included. Progress is never paid itself: it only says which states are new.
- `LatentDecomposition` (Qu et al., LaRe): the reward `z . w` of the latent terms z, with w fitted by return
  decomposition: each finished episode's summed terms against its task score, ridge least squares over the
  last `episodes` episodes, refitted whenever one ends. Until the first episode ends, w is 0.

What each learned (the count table, the weights and the episodes they were fitted on) is `arrays()`, saved
beside the policy (a slice of successive halving continues from it) and loaded with `load_arrays`; `report()`
is what the designer and the person are shown, and what the export carries (the latent form's weights).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from autoreward.contract.forms import progress_problem
from autoreward.errors import RewardFailure
from autoreward.records import CheckCategory, FormReport, FormTerm

# The ridge of the latent form's least squares, per term: a share of that term's diagonal of the normal matrix.
RIDGE = 1e-3
FORM_STATE_FILE = "form_state.npz"  # beside a policy: what its training's form reward had learned


class FormReward:
    """A program's terms turned into a training reward; see the module's docstring."""

    form = ""

    def __init__(self, terms: Callable, n_envs: int):
        self.terms = terms
        self.n_envs = n_envs
        self.names: tuple[str, ...] = ()
        self.low: np.ndarray | None = None  # each term's smallest and largest value in this training
        self.high: np.ndarray | None = None

    def _terms(self, state, action, next_state) -> np.ndarray:
        """The terms of a batch as an (N, D) float array, their names fixed by the first call."""
        _, terms = self.terms(state, action, next_state)
        if not self.names:
            self.names = tuple(terms)
            self.low = np.full(len(self.names), np.inf)
            self.high = np.full(len(self.names), -np.inf)
        values = np.stack([np.asarray(terms[name], dtype=np.float64) for name in self.names], axis=1)
        np.minimum(self.low, values.min(axis=0), out=self.low)
        np.maximum(self.high, values.max(axis=0), out=self.high)
        return values

    def __call__(self, state, action, next_state, sparse: np.ndarray):
        raise NotImplementedError

    def episodes_ended(self, rows: list[int], scores: list[float | None]) -> None:
        """The task scores (signed so that higher is better) of the episodes that ended in `rows`."""

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "names": np.array(self.names, dtype=str),
            "low": self._or_empty(self.low),
            "high": self._or_empty(self.high),
        }

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if arrays["names"].size:
            self.names = tuple(str(name) for name in arrays["names"])
            self.low, self.high = np.array(arrays["low"], dtype=np.float64), np.array(arrays["high"], dtype=np.float64)

    def report(self) -> FormReport:
        raise NotImplementedError

    def _ranges(self, weights: np.ndarray | None = None) -> tuple[FormTerm, ...]:
        if not self.names:
            return ()
        return tuple(
            FormTerm(
                name=name,
                low=float(self.low[i]),
                high=float(self.high[i]),
                weight=None if weights is None else float(weights[i]),
            )
            for i, name in enumerate(self.names)
        )

    @staticmethod
    def _or_empty(values: np.ndarray | None) -> np.ndarray:
        return np.zeros(0) if values is None else values


class ProgressCounts(FormReward):
    form = "progress"

    def __init__(self, terms: Callable, n_envs: int, bins: int, beta: float):
        super().__init__(terms, n_envs)
        self.bins = bins
        self.beta = beta
        self.counts: dict[bytes, int] = {}

    def __call__(self, state, action, next_state, sparse):
        progress = self._terms(state, action, next_state)
        problem = progress_problem(dict(zip(self.names, progress.T)))
        if problem is not None:
            raise RewardFailure(
                CheckCategory.OUT_OF_RANGE.value,
                f"the progress broke in training ({CheckCategory.OUT_OF_RANGE.value}): {problem}; a progress is a "
                "share of the task done: clip it into [0, 1].",
            )
        levels = self.levels(progress)
        visits = np.empty(len(levels))
        for row, level in enumerate(levels):
            key = level.tobytes()
            visits[row] = self.counts[key] = self.counts.get(key, 0) + 1
        bonus = self.beta / np.sqrt(visits)
        return sparse + bonus, {"sparse": sparse, "count_bonus": bonus}

    def levels(self, progress: np.ndarray) -> np.ndarray:
        """Each row's bin: its progress cut into `bins` levels per dimension (1.0 in the top level)."""
        return np.clip(np.floor(progress * self.bins), 0, self.bins - 1).astype(np.int16)

    def arrays(self):
        keys = np.array([np.frombuffer(key, dtype=np.int16) for key in self.counts], dtype=np.int16)
        return {
            **super().arrays(),
            "levels": keys.reshape(len(self.counts), len(self.names)),
            "counts": np.array(list(self.counts.values()), dtype=np.int64),
        }

    def load_arrays(self, arrays):
        super().load_arrays(arrays)
        levels = np.asarray(arrays["levels"], dtype=np.int16)
        self.counts = {row.tobytes(): int(n) for row, n in zip(levels, arrays["counts"])}

    def report(self) -> FormReport:
        return FormReport(
            form=self.form,
            terms=self._ranges(),
            bins=self.bins,
            bins_visited=len(self.counts),
            beta=self.beta,
        )


class LatentDecomposition(FormReward):
    form = "latent"

    def __init__(self, terms: Callable, n_envs: int, episodes: int):
        super().__init__(terms, n_envs)
        self.episodes = episodes
        self.weights: np.ndarray | None = None
        self.running: np.ndarray | None = None  # each environment's terms summed over its current episode
        self.sums = np.zeros((0, 0))  # the last `episodes` finished episodes' summed terms
        self.scores = np.zeros(0)  # ...and their task scores
        self.fitted = 0  # episodes the weights were fitted on, in all

    def __call__(self, state, action, next_state, sparse):
        latent = self._terms(state, action, next_state)
        if self.weights is None:
            self.weights = np.zeros(len(self.names))
            self.sums = np.zeros((0, len(self.names)))
        if self.running is None:
            self.running = np.zeros((self.n_envs, len(self.names)))
        self.running += latent
        credit = latent * self.weights
        return credit.sum(axis=1), {name: credit[:, i] for i, name in enumerate(self.names)}

    def episodes_ended(self, rows, scores):
        if self.running is None:
            return
        kept = [(row, score) for row, score in zip(rows, scores) if score is not None and np.isfinite(score)]
        if kept:
            new_sums = self.running[[row for row, _ in kept]]
            self.sums = np.vstack([self.sums, new_sums])[-self.episodes :]
            self.scores = np.concatenate([self.scores, [score for _, score in kept]])[-self.episodes :]
            self.fitted += len(kept)
            self.weights = fitted_weights(self.sums, self.scores)
        self.running[rows] = 0.0

    def arrays(self):
        return {
            **super().arrays(),
            "weights": self._or_empty(self.weights),
            "sums": self.sums,
            "scores": self.scores,
            "fitted": np.array(self.fitted),
        }

    def load_arrays(self, arrays):
        super().load_arrays(arrays)
        if self.names:
            self.weights = np.array(arrays["weights"], dtype=np.float64)
            self.sums = np.array(arrays["sums"], dtype=np.float64).reshape(-1, len(self.names))
            self.scores = np.array(arrays["scores"], dtype=np.float64)
            self.fitted = int(arrays["fitted"])

    def report(self) -> FormReport:
        return FormReport(
            form=self.form,
            terms=self._ranges(self.weights if self.weights is not None else np.zeros(len(self.names))),
            episodes_fitted=self.fitted,
        )


def fitted_weights(sums: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The weights w that make each episode's summed terms times w its score: ridge least squares, each term's
    ridge a share (RIDGE) of its own diagonal, so a term whose sums are small is not shrunk more than the others
    (one ridge for all shrank such a term 30-57x on bench/forms.py's task)."""
    normal = sums.T @ sums
    ridge = RIDGE * np.maximum(np.diag(normal), 1e-12)
    return np.linalg.solve(normal + np.diag(ridge), sums.T @ scores)
