"""Where worker jobs run: on this machine, or as tasks on a Ray cluster.

A `WorkerExecutor` has one method with `supervisor.run_worker`'s signature:
run job `kind` with `payload` so that the worker's files end up in
`output_dir`, and return how it ended. `LocalExecutor` is `run_worker`
itself. `RayExecutor` (`autoreward.sandbox.ray_executor`, needs the `ray` extra)
runs the same jailed worker on whichever node Ray picks and brings its
folder back, so a cluster needs no shared filesystem.

Checks of reward programs always run here (`checker.check_program`): they
are short, and the designer waits on each one. Training, baselines and
pre-screening take an executor.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal, Protocol, Sequence

from autoreward.config import WorkerLimits
from autoreward.errors import AutorewardError
from autoreward.records import WorkerOutcome
from autoreward.sandbox.jail import Jail, gpu_devices
from autoreward.sandbox.supervisor import ProgressHandler, run_worker

ExecutorName = Literal["local", "ray"]
EXECUTORS = ("local", "ray")


class WorkerExecutor(Protocol):
    """Runs one worker job and leaves the worker's files in `output_dir`."""

    def run(
        self,
        kind: str,
        payload: dict[str, Any],
        output_dir: Path,
        limits: WorkerLimits,
        on_progress: ProgressHandler | None,
        jail: Jail,
    ) -> WorkerOutcome: ...

    def capacity(self) -> int | None:
        """How many jobs it runs well at once; None: one per core of this machine."""
        ...

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every job now (Ctrl-C): running workers are killed, later jobs refused ("interrupted").

        Returns when no job is left running, or after `timeout` seconds.
        """
        ...


def visible_gpus() -> tuple[str, ...]:
    """This machine's GPUs a worker may be given, as CUDA_VISIBLE_DEVICES names them.

    CUDA_VISIBLE_DEVICES's own entries where it is set (the user chose), else one per /dev/nvidiaN node
    among the device nodes the jail passes to a GPU job (`jail.gpu_devices`).
    """
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None:
        return tuple(entry.strip() for entry in chosen.split(",") if entry.strip())
    numbers = (Path(node).name.removeprefix("nvidia") for node in gpu_devices())
    return tuple(sorted((n for n in numbers if n.isdigit()), key=int))


class LocalExecutor:
    """Workers on this machine: `supervisor.run_worker`, as the caller's thread asks.

    A job that needs GPUs (`limits.gpus`: a training on `--device cuda`) is given the least busy of
    `gpus` (default: `visible_gpus()`) through its CUDA_VISIBLE_DEVICES, so that trainings run in
    parallel spread over a machine's GPUs instead of all landing on the first. One executor is shared
    by all of a run's trainings for that reason.
    """

    def __init__(self, gpus: Sequence[str] | None = None):
        self.gpus = tuple(visible_gpus() if gpus is None else gpus)
        self._jobs_on = dict.fromkeys(self.gpus, 0)  # GPU -> jobs running on it now
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # set by stop(): every supervisor kills its worker
        self._running = 0

    def run(
        self,
        kind: str,
        payload: dict[str, Any],
        output_dir: Path,
        limits: WorkerLimits,
        on_progress: ProgressHandler | None,
        jail: Jail,
    ) -> WorkerOutcome:
        if self._stopping.is_set():
            return WorkerOutcome("interrupted", "not started: the command was interrupted")
        given = self._take(limits.gpus)
        environment = {"CUDA_VISIBLE_DEVICES": ",".join(given)} if given else None
        try:
            return run_worker(kind, payload, output_dir, limits, on_progress, jail, environment, self._stopping)
        finally:
            self._give_back(given)

    def capacity(self) -> int | None:
        return None

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        deadline = time.monotonic() + timeout
        while self._busy() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _busy(self) -> bool:
        with self._lock:
            return self._running > 0

    def _take(self, count: int) -> tuple[str, ...]:
        """The `count` least busy GPUs (fewer if the machine has fewer; none without GPUs), now counted busy."""
        with self._lock:
            self._running += 1
            given = tuple(sorted(self.gpus, key=lambda gpu: self._jobs_on[gpu])[:count])
            for gpu in given:
                self._jobs_on[gpu] += 1
        return given

    def _give_back(self, given: tuple[str, ...]) -> None:
        with self._lock:
            self._running -= 1
            for gpu in given:
                self._jobs_on[gpu] -= 1


def connect_executor(name: str, address: str | None = None) -> WorkerExecutor:
    """The executor called `name` (local or ray), connected; one clear sentence if it cannot be."""
    if name == "local":
        if address is not None:
            raise AutorewardError("--address is the Ray cluster's address: give it with --executor ray")
        return LocalExecutor()
    if name != "ray":
        raise AutorewardError(f"--executor must be {' or '.join(EXECUTORS)}, got {name!r}")
    try:
        importlib.import_module("ray")
    except ImportError:
        raise AutorewardError(
            "--executor ray needs the ray package: install autoreward[ray] (pip install 'autoreward[ray]') "
            "on this machine and on every node of the cluster"
        ) from None
    from autoreward.sandbox.ray_executor import RayExecutor

    return RayExecutor.connect(address)


# --- a worker's folder as bytes, for executors whose workers run on another machine ---------------
