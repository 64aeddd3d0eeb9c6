"""Worker jobs as Ray tasks: each one runs the same jailed worker, on whichever node Ray picks.

Ray is no isolation boundary (whoever reaches the cluster can run code on
it), so a Ray task does not run the job itself: on its node it builds a
`Jail` there and calls `supervisor.run_worker` in a scratch folder, exactly as
the local executor does here. What travels, all of it plain data:

- to the node: the job's kind and payload (task, training config, reward
  code), the worker's limits, whether the jail is required (it is when this
  machine's workers are jailed) and which extra paths it shows, and the
  files already in the worker's folder (a pre-screen's stored episodes);
- back: the `WorkerOutcome` and the worker's folder as a tar (a training
  worker's policy.zip, policy.npz, curve.jsonl, job.json and worker.log; an
  evaluation worker's transitions.npz, video and its held-out episodes: a
  few MB to a few tens), unpacked into `output_dir`. So a cluster needs no
  shared filesystem;
- progress messages, while the job runs, through one small actor per
  executor (`ProgressBoard`) that this process polls.

Nothing of this process's environment is sent: no runtime environment is
given to Ray, and the worker's environment is built on the node by
`supervisor.worker_environment` from the node's own few harmless variables.
Each task asks Ray for one CPU, as a local worker takes one core, and for
the GPUs its limits name (`WorkerLimits.gpus`: one for a training on
`--device cuda`); on its node the jail then passes in that node's
`/dev/nvidia*`, and Ray's CUDA_VISIBLE_DEVICES tells the worker which GPU
is its own. A job that asks for more GPUs than the cluster has fails at
once with one sentence (Ray would keep it waiting for ever).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError

from autoreward.config import WorkerLimits
from autoreward.errors import AutorewardError, JailUnavailableError
from autoreward.records import WorkerOutcome
from autoreward.sandbox.jail import USER_VARIABLE, Jail
from autoreward.sandbox.supervisor import ProgressHandler, deliver_progress, run_worker
from autoreward.sandbox.transfer import pack_folder, unpack_folder
from autoreward.serialize import from_dict, to_dict

POLL_SECONDS = 1.0  # how often progress is collected while a task runs
# A task whose node died (not one whose worker failed: that is an outcome) is run once more elsewhere.
TASK_RETRIES = 1


class RayExecutor:
    """Runs each worker job as a Ray task asking for one CPU; build it with `connect`."""

    def __init__(self, board):
        self._board = board
        self._task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(run_on_node)
        self._stopping = threading.Event()  # set by stop(): every task still running is cancelled
        self._lock = threading.Lock()
        self._running = 0

    @classmethod
    def connect(cls, address: str | None = None) -> "RayExecutor":
        """Join the Ray cluster whose head is at `address` (HOST:PORT, or "auto"); None starts a private one here."""
        if not ray.is_initialized():
            if address not in (None, "auto"):
                _check_reachable(address)  # ray.init retries an absent head for many minutes
            options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
            if address is None:
                options["include_dashboard"] = False
            try:
                ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise AutorewardError(
                    f"cannot reach the Ray cluster at {address}: {error} "
                    "(start its head with `ray start --head`, and give its HOST:6379 with --address)"
                ) from None
        board = ray.remote(num_cpus=0)(ProgressBoard).remote()
        return cls(board)

    def capacity(self) -> int:
        """The cluster's CPUs: as many jobs as that run at once, one per CPU."""
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel every task of this executor on the cluster (their workers are killed with them)."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._running == 0:
                    return
            time.sleep(0.05)

    def run(
        self,
        kind: str,
        payload: dict[str, Any],
        output_dir: Path,
        limits: WorkerLimits,
        on_progress: ProgressHandler | None,
        jail: Jail,
    ) -> WorkerOutcome:
        output_dir = Path(output_dir).resolve()
        if self._stopping.is_set():
            return WorkerOutcome("interrupted", "not started: the command was interrupted")
        if limits.gpus:
            cluster_gpus = ray.cluster_resources().get("GPU", 0)
            if cluster_gpus < limits.gpus:
                return WorkerOutcome(
                    "error",
                    f"the job asks for {limits.gpus} GPU(s) and the Ray cluster has "
                    f"{cluster_gpus:g}: start its nodes on GPU machines (ray start detects "
                    "them, or give --num-gpus), or train on --device cpu",
                )
        inputs = pack_folder(output_dir) if output_dir.is_dir() else b""
        key = uuid.uuid4().hex if on_progress is not None else None
        request = {
            "required": jail.active,
            "read_only": list(jail.read_only),
            "memory_folder_bytes": jail.memory_folder_bytes,
            "python_paths": list(jail.python_paths),
        }
        task = self._task.options(num_gpus=limits.gpus) if limits.gpus else self._task
        reference = task.remote(
            kind, payload, to_dict(limits), request, inputs, _version(), self._board if key else None, key
        )
        with self._lock:
            self._running += 1
        try:
            outcome, packed = self._wait(reference, key, on_progress)
        except BaseException:  # interrupted here: stop the job on the cluster too
            ray.cancel(reference, force=True)
            raise
        finally:
            with self._lock:
                self._running -= 1
        if packed:
            unpack_folder(packed, output_dir)
        return outcome

    def _wait(self, reference, key: str | None, on_progress) -> tuple[WorkerOutcome, bytes]:
        while True:
            done, _ = ray.wait([reference], timeout=POLL_SECONDS)
            key = self._relay(key, on_progress)
            if done:
                break
            if self._stopping.is_set():
                ray.cancel(reference, force=True)  # force: the task's process, and the worker it supervises, die
                return WorkerOutcome("interrupted", "the Ray task was cancelled: the command was interrupted"), b""
        try:
            outcome, packed = ray.get(reference)
        except RayTaskError as error:
            return WorkerOutcome("error", f"the Ray task failed on the cluster: {_gist(error)}"), b""
        except RayError as error:
            return WorkerOutcome("killed", f"the Ray task was lost (its node or process died?): {_gist(error)}"), b""
        return from_dict(WorkerOutcome, outcome), packed

    def _relay(self, key: str | None, on_progress) -> str | None:
        """Hand the job's new progress messages to `on_progress`; progress is best effort, never a failure."""
        if key is None:
            return None
        try:
            messages = ray.get(self._board.take.remote(key))
        except RayError:
            return None  # the board is gone: the job goes on without progress
        for data in messages:  # checked on the node by its supervisor; a handler's error stays here
            deliver_progress(on_progress, data)
        return key


class ProgressBoard:
    """A Ray actor holding the progress messages of running jobs until the orchestrator takes them."""

    def __init__(self):
        self._messages: dict[str, list[dict]] = {}

    def post(self, key: str, data: dict) -> None:
        self._messages.setdefault(key, []).append(data)

    def take(self, key: str) -> list[dict]:
        return self._messages.pop(key, [])

    def flush(self) -> None:
        """Nothing: a caller waits on it to know its earlier posts arrived (an actor runs one caller's calls in order)."""


# --- on the node --------------------------------------------------------------------------------


def run_on_node(
    kind: str,
    payload: dict[str, Any],
    limits: dict,
    jail_request: dict,
    inputs: bytes,
    version: str,
    board,
    key: str | None,
) -> tuple[dict, bytes]:
    """The Ray task: run the job in a jailed worker in a scratch folder of this node, return its outcome and folder."""
    node = socket.gethostname()
    if version != _version():
        message = (
            f"node {node} has autoreward {_version()}, the orchestrator {version}: "
            "install the same version on every node"
        )
        return to_dict(WorkerOutcome("error", message)), b""
    try:
        # Whom the node's workers run as is the node's own setting (its AUTOREWARD_WORKER_USER), like its jail.
        jail = Jail.from_setting("require" if jail_request["required"] else "on", user=os.environ.get(USER_VARIABLE))
    except JailUnavailableError as error:
        message = f"node {node} cannot jail its workers, and the orchestrator's are jailed: {error}"
        return to_dict(WorkerOutcome("error", message)), b""
    if jail.active:
        jail = replace(jail, memory_folder_bytes=jail_request["memory_folder_bytes"]).showing(jail_request["read_only"])
        if limits.get("gpus"):
            jail = jail.with_gpus()  # this node's GPUs; CUDA_VISIBLE_DEVICES says which is the task's
    jail = jail.importing(jail_request.get("python_paths", ()))  # a user's package, jailed or not
    on_progress = (lambda data: board.post.remote(key, data)) if key is not None else None
    folder = Path(tempfile.mkdtemp(prefix="autoreward-ray-"))
    try:
        if inputs:
            unpack_folder(inputs, folder)
        outcome = run_worker(kind, payload, folder, from_dict(WorkerLimits, limits), on_progress, jail)
        packed = pack_folder(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if key is not None:
        ray.get(board.flush.remote())  # every progress message is on the board before the result is
    return to_dict(outcome), packed


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Raise one sentence unless the head's HOST:PORT accepts a connection."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise AutorewardError(f"--address must be the Ray head's HOST:PORT (e.g. 10.0.0.5:6379), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise AutorewardError(
            f"cannot reach the Ray cluster's head at {address}: {error.strerror or error} "
            "(start it with `ray start --head --port PORT`, and give its HOST:PORT with --address)"
        ) from None


def _version() -> str:
    from autoreward.resources import autoreward_version

    return autoreward_version()


def _gist(error: BaseException) -> str:
    """The last line of a Ray error (its traceback comes first)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
