"""The worker process: `python -m autoreward.sandbox.worker JOB.json`.

Started only by `autoreward.sandbox.supervisor.run_worker`, jailed where bubblewrap
works. It limits itself first (the rlimits its supervisor chose), then runs
one job (a check, a training, a held-out evaluation, a scoring of stored episodes; `JOBS`) and reports on the message pipe.
"""

from __future__ import annotations

import ctypes
import faulthandler
import importlib
import json
import os
import resource
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from autoreward.errors import RewardFailure
from autoreward.sandbox.supervisor import MESSAGE_FD_VARIABLE, PARENT_PID_VARIABLE

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
# How native libraries (torch, the C++ runtime) say an allocation failed.
OUT_OF_MEMORY_MARKS = ("can't allocate memory", "out of memory", "std::bad_alloc", "Cannot allocate memory")


class Channel:
    """The worker's end of the message pipe: one JSON object per line."""

    def __init__(self, fd: int):
        self._file = os.fdopen(fd, "w", buffering=1)

    def send(self, kind: str, data: Any = None) -> None:
        self._file.write(json.dumps({"type": kind, "data": data}) + "\n")

    def progress(self, **data: Any) -> None:
        self.send("progress", data)


# The jobs a worker runs, by kind: "module:function", each called as function(payload, output_dir, channel)
# and returning the JSON-ready result. A kind that is itself "module:function" names a job of its own
# (the tests' probe of the jail, tests/jobs/probe.py); autoreward starts only these.
JOBS = {
    "check": "autoreward.contract.checker:run_check_job",
    "train": "autoreward.loop.training:run_training_job",
    "score": "autoreward.loop.prescreen:run_score_job",
    "evaluate": "autoreward.loop.evaluation:run_evaluation_job",  # never imports a reward program
    "returns": "autoreward.loop.reward_returns:run_returns_job",
    "task": "autoreward.contract.checker:run_task_job",
    "plan": "autoreward.loop.preview:run_planning_job",
    "replay": "autoreward.loop.preview:run_replay_job",  # never imports a reward program
}


def job_function(kind: str) -> Callable[[dict[str, Any], Path, Channel], Any]:
    """The function that runs jobs of `kind`, imported only now: a check worker never loads torch."""
    entry = JOBS.get(kind, kind)
    module, _, name = entry.partition(":")
    if not name:
        raise ValueError(f"unknown job kind {kind!r}: expected one of {', '.join(JOBS)} or 'module:function'")
    return getattr(importlib.import_module(module), name)


def limit_self(rlimits: dict[str, list[int]]) -> None:
    """Resource limits, no new privileges and death with the parent, set before any untrusted code runs."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # no setuid program can give it more rights
    except (OSError, AttributeError):
        pass  # not Linux: the supervisor's kill is then the only guard
    expected_parent = os.environ.pop(PARENT_PID_VARIABLE, None)
    if expected_parent is not None and os.getppid() != int(expected_parent):
        os._exit(1)  # the orchestrator died before prctl took effect
    for name, (soft, hard) in rlimits.items():
        resource.setrlimit(getattr(resource, name), (soft, hard))


def describe_error(error: BaseException, rlimits: dict[str, list[int]]) -> str:
    """One line for the supervisor: the exception, and plainly when it means memory ran out."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, MemoryError) or any(m in str(error) for m in OUT_OF_MEMORY_MARKS):
        limit = rlimits.get("RLIMIT_AS")
        where = f" (its limit is {limit[0] / 1024**3:.3g} GiB of address space)" if limit else ""
        return f"the worker ran out of memory{where}: {text}"
    return text


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text())
    channel = Channel(int(os.environ.pop(MESSAGE_FD_VARIABLE)))
    limit_self(job["rlimits"])
    faulthandler.enable()  # a crash in native code leaves a Python traceback in the log
    output_dir = Path(argv[1]).parent
    try:
        result = job_function(job["kind"])(job["payload"], output_dir, channel)
    except RewardFailure as failure:  # the program broke its contract: a sentence for its author, no traceback
        channel.send("error", {"message": str(failure), "category": failure.category})
        return 1
    except BaseException as error:  # report everything, even SystemExit raised by a reward program
        traceback.print_exc()
        channel.send("error", {"message": describe_error(error, job["rlimits"])})
        return 1
    channel.send("result", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
