"""The trusted fitness of a task: a per-step numpy expression reduced over each episode."""

from __future__ import annotations

import math

import numpy as np

from autoreward.config import Fitness


class FitnessMeter:
    """Evaluates a task's fitness for a batch of N environments and keeps each one's running episode value."""

    def __init__(self, fitness: Fitness, batch_size: int):
        self.fitness = fitness
        # The expression as the body of a function: a call is cheaper than eval with a fresh scope every step.
        source = f"lambda state, action, next_state: (\n{fitness.step}\n)"
        self._step = eval(compile(source, "<fitness step>", "eval"), {"np": np, "math": math})
        self._sum = np.zeros(batch_size)
        self._last = np.zeros(batch_size)
        # Episode lengths (for a mean) as differences of a step count: no array to update every step.
        self._steps = 0
        self._episode_start = np.zeros(batch_size, dtype=np.int64)

    def step_values(self, state, action, next_state) -> np.ndarray:
        """This step's fitness term for each environment, shape (N,)."""
        values = np.asarray(self._step(state, action, next_state), dtype=np.float64)  # the author's trusted expression
        return values if values.shape == (state.batch_size,) else np.broadcast_to(values, (state.batch_size,))

    def add(self, values: np.ndarray) -> None:
        # Only what `running` reads for this reduction.
        self._steps += 1
        if self.fitness.reduce == "last":
            self._last[:] = values
        else:
            self._sum += values

    def running(self) -> np.ndarray:
        """Each environment's fitness for its episode so far."""
        if self.fitness.reduce == "sum":
            return self._sum.copy()
        if self.fitness.reduce == "last":
            return self._last.copy()
        return self._sum / np.maximum(self._steps - self._episode_start, 1)

    def finish(self, rows: np.ndarray) -> np.ndarray:
        """The fitness of the episodes that just ended in `rows`; their meters start again."""
        values = self.running()[rows]
        self._sum[rows] = 0.0
        self._episode_start[rows] = self._steps
        self._last[rows] = 0.0
        return values
