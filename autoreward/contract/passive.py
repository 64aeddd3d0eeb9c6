"""The passive check: the reward program watched on every call that training makes, as gymnasium's passive
checker watches an environment.

The active check (`checker.py`) runs a program on a few hundred states before it trains; a program can pass
it and still break later, on states that only a learning policy reaches (a NaN after 30 s of simulated time,
a division that meets zero). `PassiveChecker` wraps the loaded program for training and evaluation: every
batch's total and components must be arrays of shape (N,) with finite values. The first violation raises
`RewardFailure` with the checker's category and a sentence naming the component, the environment, the
training step and the simulated time, so the training ends at once (not in the learner, with a tensor
dump) and the designer is told what to repair. An exception the program raises is reported the same way,
with its line; a write into its (read-only) inputs as `writes_input`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from autoreward.contract.reward_program import RewardFunction, input_written, program_line
from autoreward.errors import RewardFailure
from autoreward.records import CheckCategory


class PassiveChecker:
    """`function` (a loaded reward program), checked on every call; raises `RewardFailure` at the first fault."""

    def __init__(self, function: RewardFunction, code: str, first_step: int = 0):
        self.function = function
        self.code = code
        self.steps = first_step  # environment steps rewarded so far (a continued slice starts from its own)

    def __call__(self, state, action, next_state) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = state.batch_size
        self.steps += n
        try:
            result = self.function(state, action, next_state)
        except MemoryError:
            raise  # the worker's limit, not the contract: the worker says how much memory it had
        except Exception as error:  # the program's own fault, at this step
            raise self._exception(error) from None
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
            raise self._failure(CheckCategory.WRONG_OUTPUT, f"it returned a {type(result).__name__}", next_state)
        total, components = result
        if _all_fine(total, components, n):  # the common case, in about a microsecond per array
            return total, components
        # Components first: a NaN in one makes the total NaN too, and the component says where it came from.
        for name, values in (*((f"component {k!r}", v) for k, v in components.items()), ("the total", total)):
            array = np.asarray(values)
            if array.shape != (n,):
                raise self._failure(
                    CheckCategory.WRONG_SHAPE, f"{name} has shape {array.shape} instead of ({n},)", next_state
                )
            if array.dtype.kind not in "fiub":
                raise self._failure(CheckCategory.WRONG_OUTPUT, f"{name} has dtype {array.dtype}", next_state)
            finite = np.isfinite(array)
            if not finite.all():
                row = int(np.argmin(finite))
                kind = "NaN" if np.isnan(array[row]) else "infinite"
                raise self._failure(CheckCategory.NON_FINITE, f"{name} is {kind} in environment {row}", next_state, row)
        return total, components

    def _failure(self, category: CheckCategory, what: str, next_state: Any, row: int = 0) -> RewardFailure:
        when = f"at training step {self.steps}"
        time = _simulated_time(next_state, row)
        if time is not None:
            when += f", simulated time {time:.2f} s"
        advice = {
            CheckCategory.NON_FINITE: "every value must be finite at every step: guard divisions, logs, square roots "
            "and exponentials (np.maximum, np.clip) against the states that reach them",
            CheckCategory.WRONG_SHAPE: "return one value per environment, arrays of shape (N,)",
            CheckCategory.WRONG_OUTPUT: "return (total, {name: component}) with real-valued arrays of shape (N,)",
        }[category]
        return RewardFailure(category.value, f"the reward broke {when} ({category.value}): {what}; {advice}.")

    def _exception(self, error: Exception) -> RewardFailure:
        line, _ = program_line(error, self.code)
        written = input_written(error, self.code, line)
        if written is not None:
            message = f"the reward broke at training step {self.steps} (writes_input): {written}"
            return RewardFailure(CheckCategory.WRITES_INPUT.value, message)
        where = f" at line {line}" if line else ""
        return RewardFailure(
            CheckCategory.EXCEPTION.value,
            f"the reward broke at training step {self.steps} (exception): compute_reward raised "
            f"{type(error).__name__}: {error}{where}",
        )


def _all_fine(total: Any, components: dict, n: int) -> bool:
    """Whether every array is a real-valued ndarray of shape (n,) whose values are all finite.

    A sum is finite only if every value is (a NaN or an infinity carries through); a sum that overflows
    from finite values says False, and the caller's detailed check then finds nothing wrong.
    """
    sums = 0.0
    for array in (total, *components.values()):
        if type(array) is not np.ndarray or array.shape != (n,) or array.dtype.kind not in "fiu":
            return False
        sums += float(array.sum())
    return math.isfinite(sums)


def _simulated_time(next_state: Any, row: int) -> float | None:
    try:
        return float(next_state.time[row])
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
