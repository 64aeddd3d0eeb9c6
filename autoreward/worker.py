"""The worker process: `python -m autoreward.worker JOB.json`.

Started only by `autoreward.sandbox.run_worker`. It limits itself first,
then runs one job (a check or a training) and reports on the message pipe.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from .sandbox import MESSAGE_FD_VARIABLE

PR_SET_PDEATHSIG = 1


class Channel:
    """The worker's end of the message pipe: one JSON object per line."""

    def __init__(self, fd: int):
        self._file = os.fdopen(fd, "w", buffering=1)

    def send(self, kind: str, data: Any = None) -> None:
        self._file.write(json.dumps({"type": kind, "data": data}) + "\n")

    def progress(self, **data: Any) -> None:
        self.send("progress", data)


def limit_self(limits: dict[str, Any]) -> None:
    """Resource limits and death with the parent, set before any untrusted code runs."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the supervisor's kill is then the only guard
    if os.getppid() == 1:  # the orchestrator died before prctl took effect
        os._exit(1)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    if limits.get("memory_bytes"):
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text())
    channel = Channel(int(os.environ[MESSAGE_FD_VARIABLE]))
    limit_self(job["limits"])
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
        else:
            raise ValueError(f"unknown job kind {job['kind']!r}")
    except BaseException as error:  # report everything, even SystemExit raised by a reward program
        traceback.print_exc()
        channel.send("error", {"message": f"{type(error).__name__}: {error}"})
        return 1
    channel.send("result", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
