"""What a reward program that got out of the restricted Python could do in its training worker, as jobs.

The red-team tests (tests/test_red_team.py) run these in the place of the
training job, through an executor of their own, so that everything after the
training worker is autoreward's own code: the evaluation worker, the reader
of worker files, the supervisor's checks of messages, halving's copies, the
export. Each job first trains as the real job does (with `os` and `open` in
hand, as an escaped program would have them), then does its mischief. The
secret it goes after is the orchestrator's: a link to `/proc/self/environ`
is read as the environment of whichever process follows it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from autoreward.loop.training import run_training_job

ENVIRON = "/proc/self/environ"


def _trained(payload, output_dir, channel) -> dict:
    return run_training_job(payload, output_dir, channel)


def _link(output_dir: Path, name: str, target: str = ENVIRON) -> None:
    path = Path(output_dir) / name
    path.unlink(missing_ok=True)
    os.symlink(target, path)


def link_policy_weights(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """The evaluation worker's policy, a link to the orchestrator's environment."""
    result = _trained(payload, output_dir, channel)
    _link(output_dir, "policy.npz")
    return result


def link_checkpoint(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """What the next slice continues from (copied by the orchestrator), a link to its environment."""
    result = _trained(payload, output_dir, channel)
    _link(output_dir, "policy.zip")
    return result


def link_log_and_fail(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """The worker log, whose tail the orchestrator prints with an error, a link to its environment; then fail."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    _link(output_dir, "worker.log")
    raise RuntimeError("failing on purpose, so that the log's tail is shown")


def fifo_policy(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """The policy a FIFO, which would block a reader that opens it for ever."""
    result = _trained(payload, output_dir, channel)
    (output_dir / "policy.npz").unlink()
    os.mkfifo(output_dir / "policy.npz")
    return result


def folder_link_to_root(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """A link in the middle of a path: the folder the next slice's files would be read from, a link to /."""
    result = _trained(payload, output_dir, channel)
    _link(output_dir, "start", "/")
    return result


class _Payload:
    """An object whose unpickling runs code: it writes `marker` (a path given in the attack)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


MARKER = "autoreward-red-team-PWNED"  # made in the working folder of whichever process unpickles the weights


def pickle_in_policy(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """Weights that are a pickle: whoever loads them with pickles allowed creates the marker file."""
    result = _trained(payload, output_dir, channel)
    weights = dict(np.load(output_dir / "policy.npz"))
    first = sorted(weights)[0]
    weights[first] = np.array([_Payload(MARKER)], dtype=object)
    np.savez(output_dir / "policy.npz", **weights)
    return result


def forged_progress(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """A well-formed message with a string where a number belongs, as the CLI's display reads it."""
    channel.progress(stage="curve", step=10, total=100, fitness="x")
    return _trained(payload, output_dir, channel)


def forged_result(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """A result that is not a LearnerResult: steps as text, a curve point's fitness NaN."""
    result = _trained(payload, output_dir, channel)
    result["steps"] = "a lot"
    return result


def forged_record(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """A training.json with a perfect score beside its own files, and one where the orchestrator keeps its own,
    then a huge fitness in every curve point: the held-out score must not move."""
    result = _trained(payload, output_dir, channel)
    for point in result["curve"]:
        point["fitness"] = 1e9
    forged = {"task_id": "x", "evaluation": {"fitness_mean": 1e9}}
    (output_dir / "training.json").write_text(json.dumps(forged))
    try:
        (output_dir.parent / "training.json").write_text(json.dumps(forged))
    except OSError:
        pass  # the jail shows the worker only its own folder
    return result


def patch_state_classes(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """The class patches an escaped program could make in its own process: every State field and the task
    score's books report a perfect run from the start. They touch this process only."""
    from autoreward.sim import state as state_module
    from autoreward.task import fitness as fitness_module

    # type.__setattr__ goes past any guard a class's own metaclass puts up: the attacker has all of Python.
    type.__setattr__(fitness_module.FitnessMeter, "finish", lambda self, rows: np.full(len(rows), 1e9))
    type.__setattr__(
        fitness_module.FitnessMeter, "step_values", lambda self, *a: np.full(self.running().shape, 1e9)
    )
    for name in dir(state_module):
        kind = getattr(state_module, name)
        if isinstance(kind, type) and "resolve" in vars(kind):
            type.__setattr__(kind, "resolve", lambda self, path: np.full(1, 1e9))
    return _trained(payload, output_dir, channel)


def environment_everywhere(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    """Whatever environment the worker has, written into its folder and sent in messages and its result."""
    seen = json.dumps(dict(os.environ))
    (output_dir / "environment.json").write_text(seen)
    channel.progress(stage="training", step=0, total=1, error=seen[:1500])
    result = _trained(payload, output_dir, channel)
    return result
