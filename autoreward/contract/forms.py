"""The reward forms (`config.RewardForm`): what a program of each form returns, and what its check adds.

- **reward** (`compute_reward`): `(total, components)`, a dense reward per step; the policy learns from `total`.
- **progress** (`compute_progress`, ProgressCounts): `{name: progress}`, each an estimate in [0, 1] of how far
  the task has come. Training pays the task's sparse reward plus a count bonus over those estimates binned
  (`sim/reward_forms.ProgressCounts`); the estimates themselves are never paid.
- **latent** (`compute_latent`, LaRe): `{name: term}`, interpretable per-step terms. Training pays a weighted
  sum of them whose weights a return decomposition fits, online, to each episode's task score
  (`sim/reward_forms.LatentDecomposition`).

All three take `(state, action, next_state)`, so the static rules, the reads of a program and the check's
calls are one. `as_reward` gives a progress or latent program the reward's shape, `(sum of terms, terms)`,
for every check that compares totals (determinism, row by row); `values_problem` is what each form adds on
the check's real states.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from autoreward.contract.reward_program import ENTRY_POINTS, load, program_form
from autoreward.records import CheckCategory, CheckResult

# The tolerance of the progress form's [0, 1]: a clip computed in float32 may land a hair outside.
PROGRESS_SLACK = 1e-6

EXPECTED = {
    "reward": "a tuple (total, components): total an array of shape ({n},), components a dict of such arrays by name",
    "progress": "a dict {{name: progress}}, each an array of shape ({n},) with values in [0, 1]",
    "latent": "a dict {{name: term}}, each an array of shape ({n},)",
}
# How the check names what a program of each form returns.
TERMS = {"reward": "component", "progress": "progress estimate", "latent": "latent term"}


def as_reward(form: str, function: Callable) -> Callable:
    """`function` as a reward program's `(total, components)`: a progress or latent program's dict becomes its
    components and their sum the total (a sum only the check compares; training never pays it). Anything but a
    dict is returned as it came, for the check to name."""
    if form == "reward":
        return function

    def terms_as_reward(state, action, next_state):
        result = function(state, action, next_state)
        if not isinstance(result, dict):
            return result
        return _summed(result), result

    return terms_as_reward


def _summed(terms: dict) -> Any:
    arrays = [np.asarray(value) for value in terms.values()]
    if arrays and all(a.dtype.kind in "fiub" and a.shape == arrays[0].shape for a in arrays):
        with np.errstate(all="ignore"):
            return np.sum([a.astype(np.float64) for a in arrays], axis=0)
    return np.zeros(arrays[0].shape if arrays else (0,))  # the terms' own checks say what is wrong


# The last lines of every State description (task/describe.py): the function the designer writes, by form.
SIGNATURES = {
    "reward": (
        "def compute_reward(state: State, action: np.ndarray, next_state: State) -> tuple[np.ndarray, dict[str, np.ndarray]]:",
        '    """Return (total, components): arrays of shape (N,), components by name. numpy and math only."""',
    ),
    "progress": (
        "def compute_progress(state: State, action: np.ndarray, next_state: State) -> dict[str, np.ndarray]:",
        '    """Return {name: progress}: arrays of shape (N,), each within [0, 1]. numpy and math only."""',
    ),
    "latent": (
        "def compute_latent(state: State, action: np.ndarray, next_state: State) -> dict[str, np.ndarray]:",
        '    """Return {name: latent term}: arrays of shape (N,), each changing with the state. numpy and math only."""',
    ),
}


def with_signature(state_description: str, form: str) -> str:
    """A State description (which ends with the reward form's function) ending with `form`'s function instead."""
    ending = "\n".join(SIGNATURES["reward"]) + "\n"
    if form == "reward" or not state_description.endswith(ending):
        return state_description
    return state_description[: -len(ending)] + "\n".join(SIGNATURES[form]) + "\n"


def load_as_reward(code: str) -> Callable:
    """A program of any form, loaded (worker only) with the reward's shape (`as_reward`): what the scoring of
    stored or held-out episodes and a preview's planner call; a progress program is scored by its summed
    progress, a latent one by its terms unweighted (the weights are its training's)."""
    return as_reward(program_form(code), load(code))


def not_terms(form: str, result: Any, n: int) -> CheckResult | None:
    """For a progress or latent program that returned something other than a dict: one sentence."""
    if form == "reward" or isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict):
        return None
    return CheckResult(
        CheckCategory.WRONG_OUTPUT,
        f"{ENTRY_POINTS[form]} returned a {type(result).__name__}; expected {EXPECTED[form].format(n=n)}.",
    )


def task_problem(form: str, task) -> str | None:
    """Why `task` cannot train a program of `form`, in one sentence; None when it can. Both other forms learn
    from the task score: the progress form from its sparse reward, the latent form from each episode's score."""
    if form == "reward" or task.fitness is not None:
        return None
    return (
        f"task {task.id} has no task score ([fitness]), and the {form} form trains on it (the progress form on its "
        "sparse reward, the latent form on each episode's score): use the reward form (compute_reward), or give the task a "
        "[fitness]"
    )


def values_problem(form: str, terms: dict[str, np.ndarray]) -> CheckResult | None:
    """What the form asks of its terms on the check's real states: progress within [0, 1]; latent terms that
    change (a constant term carries no credit: the decomposition cannot tell it from the episode's length)."""
    outside = _outside_range(terms) if form == "progress" else None
    if outside is not None:
        name, low, high = outside
        return CheckResult(
            CheckCategory.OUT_OF_RANGE,
            f"progress {name!r} ranges over [{low:.4g}, {high:.4g}] on the check's states; a progress is a "
            "share of the task done, within [0, 1]: squash it (np.clip(x, 0.0, 1.0), np.exp(-d / scale), "
            "1 - d / d0 clipped).",
        )
    if form == "latent":
        for name, values in terms.items():
            if float(np.ptp(values)) <= 1e-12 * max(1.0, float(np.abs(values).max())):
                return CheckResult(
                    CheckCategory.WRONG_OUTPUT,
                    f"latent term {name!r} is {float(values[0]):.6g} on every one of the check's {values.size} "
                    "states; a latent term must change with the state or the action, or it carries no credit. "
                    "Drop it, or make it measure something that varies.",
                )
    return None


def progress_problem(terms: dict[str, np.ndarray]) -> str | None:
    """In training: the first progress outside [0, 1], as the end of a sentence; None when all are within."""
    outside = _outside_range(terms)
    if outside is None:
        return None
    name, low, high = outside
    return f"progress {name!r} reached {low if low < 0 else high:.4g}, outside [0, 1]"


def _outside_range(terms: dict[str, np.ndarray]) -> tuple[str, float, float] | None:
    """The first progress with a value outside [0, 1] (beyond PROGRESS_SLACK), with its smallest and largest."""
    for name, values in terms.items():
        low, high = float(np.min(values)), float(np.max(values))
        if low < -PROGRESS_SLACK or high > 1.0 + PROGRESS_SLACK:
            return name, low, high
    return None
