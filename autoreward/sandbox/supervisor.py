"""Running untrusted work in a worker process, and supervising it from the orchestrator.

The orchestrator never runs reward code itself. It writes a job file into
the worker's own output folder and starts `python -m autoreward.sandbox.worker` with:

- an environment stripped to a few harmless variables, so no API key or
  other secret reaches the worker;
- its own process session, so the whole group can be killed at once;
- a pipe on which the worker reports progress and its result as JSON lines
  (the supervisor never scrapes printed output);
- a wall-clock budget and an idle budget (longest silence between two
  messages): past either, the group is killed with SIGKILL.

The supervisor decides the worker's resource limits (`resource_limits`:
address space, file size, CPU time, processes, no core files); the worker
applies them, and asks the kernel to kill it if its parent dies, before it
touches any untrusted code. Around all of this, a `Jail` (autoreward.sandbox.jail)
runs the worker under bubblewrap where it works: no network, a read-only
view of the system, writes only to its output folder. Without it the worker
runs as the same user, can read what that user can read, and can reach the
network; `Jail.detect` says so loudly.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

from autoreward.config import WorkerLimits
from autoreward.errors import WorkerProtocolError
from autoreward.records import WorkerOutcome
from autoreward.resources import PACKAGE_DIR
from autoreward.sandbox.jail import Jail
from autoreward.sandbox.rendering import gl_environment
from autoreward.sandbox.worker_files import read_tail, write_new

MESSAGE_FD_VARIABLE = "AUTOREWARD_MESSAGE_FD"
# Set only for an unjailed worker: the pid it must find as its parent, or it exits (the parent already died).
PARENT_PID_VARIABLE = "AUTOREWARD_PARENT_PID"
# Seconds of CPU time a worker gets beyond its wall budget before the kernel stops it (SIGXCPU).
CPU_GRACE_SECONDS = 10
# The longest message line a worker may send (a training result is a few kilobytes).
MESSAGE_BYTES = 16 * 1024**2
# bwrap reports a worker killed by signal N as exit code 128 + N.
SIGNAL_EXIT_BASE = 128
# Variables a worker may inherit; everything else (API keys included) is dropped.
# CUDA_VISIBLE_DEVICES: the GPUs a worker may use, as the user (or Ray, for a task given GPUs) chose them.
# LD_LIBRARY_PATH: where some machines keep their GPU driver's libraries (/usr/local/nvidia/lib64).
INHERITED_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "MUJOCO_GL",
    "PYOPENGL_PLATFORM",
    "DISPLAY",
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
)
LOG_NAME = "worker.log"

ProgressHandler = Callable[[dict[str, Any]], None]


def worker_environment(
    output_dir: Path, extra: Mapping[str, str] | None = None, python_paths: tuple[str, ...] = ()
) -> dict[str, str]:
    """The whole environment of a worker: a few inherited variables, `extra` (the caller's choices), and ours."""
    environment = {k: os.environ[k] for k in INHERITED_VARIABLES if k in os.environ}
    # The OpenGL backend is chosen on the machine the worker runs on (a Ray node may differ from this one).
    environment.update(gl_environment())
    environment.update(extra or {})
    environment.update(
        HOME=str(output_dir),
        PYTHONPATH=os.pathsep.join([str(PACKAGE_DIR.parent), *python_paths]),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        # One worker per core: each keeps to a single thread.
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
    )
    return environment


def resource_limits(limits: WorkerLimits, uid: int | None = None) -> dict[str, tuple[int, int]]:
    """The rlimits (name: (soft, hard)) a worker sets on itself before it runs untrusted code.

    RLIMIT_NPROC counts every thread of the worker's user (`uid`: `Jail.worker_uid`; this process's by
    default), not of the worker, so the limit is what that user runs now plus `limits.processes` (since
    Linux 5.14 a jailed worker's count is only its own user namespace's, so it may start a few more). The
    kernel never enforces it for root: a root orchestrator's jailed workers run as an unprivileged user,
    and its unjailed ones are stopped only by their budgets.
    """
    cpu = math.ceil(limits.cpu_seconds if limits.cpu_seconds is not None else limits.wall_seconds + CPU_GRACE_SECONDS)
    chosen = {
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_FSIZE": (limits.file_bytes, limits.file_bytes),
        "RLIMIT_CPU": (cpu, cpu + 5),  # soft: SIGXCPU; hard, 5 s later: SIGKILL
        "RLIMIT_NPROC": (_user_threads(uid) + limits.processes,) * 2,
    }
    if limits.memory_bytes:
        chosen["RLIMIT_AS"] = (limits.memory_bytes, limits.memory_bytes)
    return chosen


def _user_threads(uid: int | None = None) -> int:
    """How many threads user `uid` (this process's by default) runs now, as far as /proc shows."""
    uid, count = os.getuid() if uid is None else uid, 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(
                line.split(":", 1) for line in Path(entry.path, "status").read_text().splitlines() if ":" in line
            )
        except OSError:
            continue  # it ended meanwhile
        if int(fields["Uid"].split()[0]) == uid:
            count += int(fields["Threads"])
    return count


def run_worker(
    kind: str,
    payload: dict[str, Any],
    output_dir: Path,
    limits: WorkerLimits = WorkerLimits(),
    on_progress: ProgressHandler | None = None,
    jail: Jail | None = None,
    environment: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
) -> WorkerOutcome:
    """Run job `kind` with `payload` in a fresh worker process writing only to `output_dir`.

    `jail` is built once by the caller (`Jail.detect()`); without one, bubblewrap is probed on each call.
    `environment`: variables the worker gets besides the inherited ones (e.g. the OpenGL backend it renders with).
    `stop`: once set (the user pressed Ctrl-C), the worker's group is killed within a second and the outcome is
    "interrupted".
    """
    jail = jail if jail is not None else Jail.detect()
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    job_path = output_dir / "job.json"
    job = {"kind": kind, "payload": payload, "rlimits": resource_limits(limits, jail.worker_uid)}
    _replace_file(job_path, json.dumps(job, indent=2).encode())

    read_fd, write_fd = os.pipe()
    environment = worker_environment(output_dir, environment, jail.python_paths)
    environment[MESSAGE_FD_VARIABLE] = str(write_fd)
    if not jail.active:  # jailed, bwrap's --die-with-parent does this job
        environment[PARENT_PID_VARIABLE] = str(os.getpid())
    watch = jail.prepare(output_dir, limits.folder_bytes)  # the worker user's folder, and its size measured
    with _appending(output_dir / LOG_NAME) as log:
        process = subprocess.Popen(
            jail.wrap([sys.executable, "-m", "autoreward.sandbox.worker", str(job_path)], output_dir),
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
        outcome = _supervise(process, read_fd, limits, on_progress, jail.active, stop, watch)
    finally:
        os.close(read_fd)
        _kill_group(process)
    outcome = _with_log_tail(outcome, output_dir / LOG_NAME)
    cause = _startup_error(outcome)
    return replace(outcome, status="setup_failed", message=f"the worker could not start: {cause}") if cause else outcome


# What Python prints when `python -m MODULE` cannot find MODULE: "PYTHON: Error while finding module ...".
NO_MODULE = "Error while finding module specification"
# The last line of a Python traceback: "ModuleNotFoundError: No module named 'mypkg'".
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit)\b.*$")


def _startup_error(outcome: WorkerOutcome) -> str | None:
    """For a worker that exited on an exception before it sent a word (Python's exit code 1, and a traceback
    or `python -m`'s own complaint in its log): that exception, the real cause. None for any other end."""
    if outcome.status != "killed" or outcome.exit_code != 1:
        return None
    lines = [line.strip() for line in outcome.log_tail.splitlines() if line.strip()]
    if lines and NO_MODULE in lines[-1]:
        return lines[-1][lines[-1].index(NO_MODULE) :]
    if "Traceback (most recent call last)" not in outcome.log_tail:
        return None
    causes = [line for line in lines if EXCEPTION_LINE.match(line)]
    return causes[-1] if causes else None


def _supervise(
    process, read_fd: int, limits: WorkerLimits, on_progress, jailed: bool, stop: threading.Event | None, folder=None
) -> WorkerOutcome:
    started = last_message = time.monotonic()
    pending = b""
    result: Any = None
    reported = False
    error: dict | None = None
    while True:
        if stop is not None and stop.is_set():
            return WorkerOutcome("interrupted", "the worker was stopped: the command was interrupted")
        now = time.monotonic()
        if now - started > limits.wall_seconds:
            return WorkerOutcome(
                "timeout", f"the worker exceeded its wall-clock budget of {limits.wall_seconds:g} s and was killed"
            )
        if now - last_message > limits.idle_seconds:
            return WorkerOutcome(
                "idle_timeout",
                f"the worker sent nothing for {limits.idle_seconds:g} s (a call that never returns?) and was killed",
            )
        if folder is not None and (overflow := folder.overflow()) is not None:  # a FolderWatch
            return WorkerOutcome("error", overflow)
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
        if len(pending) > MESSAGE_BYTES:
            return WorkerOutcome("error", f"the worker sent a message longer than {MESSAGE_BYTES} bytes and was killed")
        for line in lines:
            try:
                message = parse_message(line)
            except WorkerProtocolError as problem:
                return WorkerOutcome("worker_protocol", f"the worker broke the message protocol and was killed: {problem}")
            if message["type"] == "progress" and on_progress is not None:
                deliver_progress(on_progress, message["data"])
            elif message["type"] == "result":
                result, reported = message["data"], True
            elif message["type"] == "error":
                error = message["data"]

    code = process.wait()
    if reported and code == 0:
        return WorkerOutcome("ok", "finished", result=result, exit_code=code)
    if error is not None:
        return WorkerOutcome("error", error["message"], exit_code=code, category=error.get("category"))
    number = -code if code < 0 else code - SIGNAL_EXIT_BASE if jailed and code > SIGNAL_EXIT_BASE else None
    if number is not None and number in _SIGNALS:
        return WorkerOutcome("killed", f"the worker {_death(number)} before it reported a result", exit_code=code)
    return WorkerOutcome("killed", f"the worker exited with code {code} before it reported a result", exit_code=code)


_SIGNALS = {s.value for s in signal.Signals}


# What a progress message may say: these fields with these types; any other field only a short scalar.
PROGRESS_FIELDS: dict[str, tuple[type, ...]] = {
    "stage": (str,),
    "step": (int,),
    "total": (int,),
    "episodes": (int,),
    "transitions": (int,),
    "rows": (int,),
    "fitness": (float, int, type(None)),
    "error": (str,),
    "file": (str,),
}
PROGRESS_MAX_FIELDS = 32
PROGRESS_MAX_TEXT = 2000
MESSAGE_KINDS = ("progress", "result", "error")


def parse_message(line: bytes) -> dict:
    """One message from the pipe, checked: its type, and for progress and errors every field's type and size
    (numbers finite, text bounded). `WorkerProtocolError` with one sentence otherwise: a reward program
    writing to the pipe, or a worker gone wrong, must not reach the handlers that print and record."""
    try:
        message = json.loads(line, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise WorkerProtocolError(f"a line that is not JSON: {line[:120]!r}") from None
    if not isinstance(message, dict) or message.get("type") not in MESSAGE_KINDS or set(message) - {"type", "data"}:
        raise WorkerProtocolError(f"a message that is none of {', '.join(MESSAGE_KINDS)}: {line[:120]!r}")
    data = message.get("data")
    if message["type"] == "progress":
        _check_progress(data)
    elif message["type"] == "error":
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            raise WorkerProtocolError("an error message without its text")
        if not isinstance(data.get("category"), (str, type(None))) or set(data) - {"message", "category"}:
            raise WorkerProtocolError("an error message with fields it does not have")
        data["message"] = data["message"][:PROGRESS_MAX_TEXT * 4]
    return message


def _check_progress(data) -> None:
    if not isinstance(data, dict) or len(data) > PROGRESS_MAX_FIELDS:
        raise WorkerProtocolError(f"a progress message that is not a mapping of at most {PROGRESS_MAX_FIELDS} fields")
    for key, value in data.items():
        if not isinstance(key, str) or len(key) > 64:
            raise WorkerProtocolError("a progress message with a field name that is not a short string")
        expected = PROGRESS_FIELDS.get(key, (str, int, float, bool, type(None)))
        if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
            raise WorkerProtocolError(f"a progress message whose {key!r} is {_kind(value)}, not {_names(expected)}")
        if isinstance(value, float) and not math.isfinite(value) or isinstance(value, int) and abs(value) > 2**62:
            raise WorkerProtocolError(f"a progress message whose {key!r} is not a finite number of sensible size")
        if isinstance(value, str) and len(value) > PROGRESS_MAX_TEXT:
            raise WorkerProtocolError(f"a progress message whose {key!r} is longer than {PROGRESS_MAX_TEXT} characters")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _kind(value) -> str:
    return "text" if isinstance(value, str) else type(value).__name__


def _names(kinds: tuple[type, ...]) -> str:
    words = {str: "text", int: "a whole number", float: "a number", bool: "true/false", type(None): "null"}
    return " or ".join(dict.fromkeys(words[k] for k in kinds))


def deliver_progress(on_progress: ProgressHandler, data: dict) -> None:
    """Hand a checked progress message to the caller's handler: whatever the handler raises stays here, so a
    display that cannot show a message never ends the worker it came from, nor the run."""
    try:
        on_progress(data)
    except Exception:  # a progress display is never worth a run
        pass


def _death(number: int) -> str:
    """How a worker ended by signal `number`, in words."""
    name = signal.Signals(number).name
    if number == signal.SIGSEGV:
        return f"crashed with {name} (a segmentation fault in native code)"
    if number == signal.SIGABRT:
        return f"aborted with {name} (native code gave up, e.g. a failed allocation or assertion)"
    if number == signal.SIGXCPU:
        return f"used up its CPU-time limit and was stopped by {name}"
    if number == signal.SIGKILL:
        return f"was killed by {name} (sent by another process, or by the kernel when memory ran out)"
    return f"was killed by {name}"


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _with_log_tail(outcome: WorkerOutcome, log_path: Path) -> WorkerOutcome:
    """The outcome with the end of the worker's log, read as any worker file is: a link the worker put in
    the log's place (to /proc/self/environ, say) is named, never followed."""
    return replace(outcome, log_tail=read_tail(log_path.parent, log_path.name))


def _replace_file(path: Path, data: bytes) -> None:
    """Write `path` afresh, removing first whatever a worker may have left there (a link is removed, not followed)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    write_new(path, data)


def _appending(path: Path):
    """The worker's log, opened for appending without following a link a worker left in its place."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError:  # a link or something else that is not the log: start a new log
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        fd = os.open(path, flags | os.O_EXCL, 0o644)
    return os.fdopen(fd, "ab")
