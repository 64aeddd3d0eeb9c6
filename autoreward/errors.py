"""The exceptions autoreward raises. Each message says what went wrong, where, and what is expected."""

from __future__ import annotations


class AutorewardError(Exception):
    """Base of every error autoreward raises on purpose; the CLI prints its message without a traceback."""


class TaskError(AutorewardError):
    """A task file is malformed, or a task name or environment is unknown."""


class UnknownEnvironmentError(TaskError):
    """The gymnasium environment id is not registered or is not a MuJoCo environment."""


class RewardProgramError(AutorewardError):
    """A reward program failed its check; `.result` holds the CheckResult."""

    def __init__(self, result):
        super().__init__(f"{result.category.value}: {result.message}")
        self.result = result


class WorkerError(AutorewardError):
    """A worker process died, timed out or reported an error it could not recover from."""


class UnsupportedSimulatorError(AutorewardError):
    """A task cannot run on the simulator asked for (no batched semantics, or a model MuJoCo Warp cannot simulate)."""
