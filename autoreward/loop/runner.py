"""Where a run's workers start: one `Runner`, made once per run and passed as one thing.

A run's trainings, evaluations, scorings and previews each start a worker
process. Three things about those workers are the same for the whole run,
and each was once a parameter of its own, threaded through a dozen calls:

- the jail they start in (`sandbox.jail.Jail`), probed once: probing runs
  bubblewrap, so a default probed inside each call cost one process per worker;
- the executor that runs them (`sandbox.executor`: this machine, or a Ray
  cluster), one per run, so that its count of busy GPUs sees every training
  and Ctrl-C stops all of them at once;
- the progress they report to (`loop.progress.LoopProgress`): the terminal's
  bars and notes, or nothing.

`Runner.run` starts one job in the jail set up for its task (the task's own
files shown, its GPUs for a GPU job): the one place that is done for the loop.
Checks of reward programs (`contract.checker`, a level below) take the jail
alone: they always run on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from autoreward.config import Task, WorkerLimits
from autoreward.loop.progress import LoopProgress, SilentProgress
from autoreward.records import WorkerOutcome
from autoreward.sandbox.executor import WorkerExecutor, connect_executor
from autoreward.sandbox.jail import Jail


@dataclass(frozen=True)
class Runner:
    """The jail, the executor and the progress of one run's workers."""

    jail: Jail
    executor: WorkerExecutor
    progress: LoopProgress = SilentProgress()

    @classmethod
    def connect(
        cls,
        executor: str | WorkerExecutor = "local",
        address: str | None = None,
        progress: LoopProgress = SilentProgress(),
        jail: Jail | None = None,
    ) -> "Runner":
        """Runner on the executor named `executor` (local or ray, joined here at `address`) or given, in `jail`
        (default: the one AUTOREWARD_JAIL asks for, probed now: on, off or require). One sentence, an
        AutorewardError, for an executor that cannot be reached or a jail that is required and cannot run."""
        if jail is None:
            jail = Jail.from_environment()
        if isinstance(executor, str):
            executor = connect_executor(executor, address)
        return cls(jail, executor, progress)

    def reporting_to(self, progress: LoopProgress) -> "Runner":
        """These workers, their progress told to `progress` (the terminal's bars, say)."""
        return replace(self, progress=progress)

    def run(
        self,
        kind: str,
        payload: dict[str, Any],
        output_dir: Path,
        limits: WorkerLimits,
        task: Task,
        on_progress: Callable[[dict], None] | None = None,
        gpus: bool = False,
    ) -> WorkerOutcome:
        """Run job `kind` of `task` so that its files end up in `output_dir`: in the run's jail with the task's
        own files shown (and this machine's GPUs, with `gpus`), where the run's executor puts it."""
        jail = self.jail.for_task(task)
        if gpus:
            jail = jail.with_gpus()
        return self.executor.run(kind, payload, output_dir, limits, on_progress, jail)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every worker now (Ctrl-C): running ones are killed, later ones refused as interrupted."""
        self.executor.stop(timeout)
