"""Running untrusted work in a worker process, and supervising it from the orchestrator.

The orchestrator never runs reward code itself. It writes a job file into
the worker's own output folder and starts `python -m autoreward.worker` with:

- an environment stripped to a few harmless variables, so no API key or
  other secret reaches the worker;
- its own process session, so the whole group can be killed at once;
- a pipe on which the worker reports progress and its result as JSON lines
  (the supervisor never scrapes printed output);
- a wall-clock budget and an idle budget (longest silence between two
  messages): past either, the group is killed with SIGKILL.

Inside, the worker sets its own resource limits (memory, file size, no core
files) and asks the kernel to kill it if the orchestrator dies, before it
touches any untrusted code. What this does not promise: the worker runs as
the same user, can read what that user can read, and can reach the
network. The jail that closes those gaps is layered on top of this module.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .records import WorkerLimits, WorkerOutcome, to_dict
from .resources import PACKAGE_DIR

MESSAGE_FD_VARIABLE = "AUTOREWARD_MESSAGE_FD"
# Variables a worker may inherit; everything else (API keys included) is dropped.
INHERITED_VARIABLES = ("PATH", "LANG", "LC_ALL", "TZ", "MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")
LOG_NAME = "worker.log"

ProgressHandler = Callable[[dict[str, Any]], None]


def worker_environment(output_dir: Path) -> dict[str, str]:
    environment = {k: os.environ[k] for k in INHERITED_VARIABLES if k in os.environ}
    environment.update(
        HOME=str(output_dir),
        PYTHONPATH=str(PACKAGE_DIR.parent),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        # One worker per core: each keeps to a single thread.
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
    )
    return environment


def run_worker(
    kind: str,
    payload: dict[str, Any],
    output_dir: Path,
    limits: WorkerLimits = WorkerLimits(),
    on_progress: ProgressHandler | None = None,
) -> WorkerOutcome:
    """Run job `kind` with `payload` in a fresh worker process writing only to `output_dir`."""
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    job_path = output_dir / "job.json"
    job_path.write_text(json.dumps({"kind": kind, "payload": payload, "limits": to_dict(limits)}, indent=2))

    read_fd, write_fd = os.pipe()
    environment = worker_environment(output_dir)
    environment[MESSAGE_FD_VARIABLE] = str(write_fd)
    with open(output_dir / LOG_NAME, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "autoreward.worker", str(job_path)],
            cwd=output_dir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    os.close(write_fd)
    try:
        outcome = _supervise(process, read_fd, limits, on_progress)
    finally:
        os.close(read_fd)
        _kill_group(process)
    return _with_log_tail(outcome, output_dir / LOG_NAME)


def _supervise(process, read_fd: int, limits: WorkerLimits, on_progress) -> WorkerOutcome:
    started = last_message = time.monotonic()
    pending = b""
    result: Any = None
    error: dict | None = None
    while True:
        now = time.monotonic()
        if now - started > limits.wall_seconds:
            return WorkerOutcome("timeout", f"the worker ran past its budget of {limits.wall_seconds:g} s and was killed")
        if now - last_message > limits.idle_seconds:
            return WorkerOutcome(
                "idle_timeout",
                f"the worker sent nothing for {limits.idle_seconds:g} s (a call that never returns?) and was killed",
            )
        wait = max(0.0, min(limits.wall_seconds - (now - started), limits.idle_seconds - (now - last_message)))
        ready, _, _ = select.select([read_fd], [], [], min(wait, 1.0))
        if not ready:
            continue
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:  # every writer closed: the worker has exited
            break
        last_message = time.monotonic()
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if message["type"] == "progress" and on_progress is not None:
                on_progress(message["data"])
            elif message["type"] == "result":
                result = message["data"]
            elif message["type"] == "error":
                error = message["data"]

    code = process.wait()
    if result is not None and code == 0:
        return WorkerOutcome("ok", "finished", result=result, exit_code=code)
    if error is not None:
        return WorkerOutcome("error", error["message"], exit_code=code)
    if code < 0:
        name = signal.Signals(-code).name
        return WorkerOutcome("killed", f"the worker was killed by {name} before it reported a result", exit_code=code)
    return WorkerOutcome("killed", f"the worker exited with code {code} before it reported a result", exit_code=code)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _with_log_tail(outcome: WorkerOutcome, log_path: Path, limit: int = 4000) -> WorkerOutcome:
    try:
        tail = log_path.read_bytes()[-limit:].decode(errors="replace")
    except OSError:
        tail = ""
    return WorkerOutcome(outcome.status, outcome.message, outcome.result, outcome.exit_code, tail)
