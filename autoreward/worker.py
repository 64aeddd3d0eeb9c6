"""The worker process: `python -m autoreward.worker JOB.json`.

Started only by `autoreward.sandbox.run_worker`, jailed where bubblewrap
works. It limits itself first (the rlimits its supervisor chose), then runs
one job (a check or a training) and reports on the message pipe.
"""

from __future__ import annotations

import ctypes
import faulthandler
import json
import os
import resource
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from .sandbox import MESSAGE_FD_VARIABLE, PARENT_PID_VARIABLE

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
        if job["kind"] == "check":
            from .checker import run_check_job

            result = run_check_job(job["payload"], channel)
        elif job["kind"] == "train":
            from .training import run_training_job

            result = run_training_job(job["payload"], output_dir, channel)
        elif job["kind"] == "score":
            from .prescreen import run_score_job

            result = run_score_job(job["payload"], channel)
        elif job["kind"] == "probe":
            result = run_probe_job(job["payload"])
        else:
            raise ValueError(f"unknown job kind {job['kind']!r}")
    except BaseException as error:  # report everything, even SystemExit raised by a reward program
        traceback.print_exc()
        channel.send("error", {"message": describe_error(error, job["rlimits"])})
        return 1
    channel.send("result", result)
    return 0


def run_probe_job(payload: dict[str, Any]) -> Any:
    """Run `payload["code"]` as plain Python, with no static rules and no restricted loader.

    Only the tests start this kind, to show what the jail and the limits hold on
    their own against code that got past every rule; autoreward never does.
    The code's variable `result` (JSON-ready) is the job's result.
    """
    namespace: dict[str, Any] = {"__name__": "probe"}
    exec(compile(payload["code"], "<probe>", "exec"), namespace)
    return namespace.get("result")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
