"""The exceptions autoreward raises. Each message says what went wrong, where, and what is expected."""

from __future__ import annotations


class AutorewardError(Exception):
    """Base of every error autoreward raises on purpose; the CLI prints its message without a traceback."""


class TaskError(AutorewardError):
    """A task file is malformed, or a task name or environment is unknown."""


class UnknownEnvironmentError(TaskError):
    """The gymnasium environment id is not registered or is not a MuJoCo environment."""


class MissingDependencyError(TaskError):
    """The environment needs a package that is not installed; the message names what to install."""


class WorkerError(AutorewardError):
    """A worker process died, timed out or reported an error it could not recover from."""


class UnsupportedSimulatorError(AutorewardError):
    """A task cannot run on the simulator asked for (no batched semantics, or a model MuJoCo Warp cannot simulate)."""


class JailWarning(UserWarning):
    """Workers are running without the bubblewrap jail."""


class JailUnavailableError(AutorewardError):
    """The jail was required (AUTOREWARD_JAIL=require) but bubblewrap does not work here."""


class ExportError(AutorewardError):
    """A reward program cannot be exported as it stands (it fails the static rules, or its names clash)."""


class ExtractionError(AutorewardError):
    """The reply holds no usable program; the message is written to be sent back to the LLM."""


class PromptError(AutorewardError):
    """A template is missing, malformed, or needs a variable it was not given."""


class LLMError(AutorewardError):
    """The LLM could not be reached or refused the request; the message says why and what to do."""


class VideoError(AutorewardError):
    """A policy's video could not be rendered or encoded (no OpenGL here, or an encoder failure)."""


class RewardFailure(WorkerError):
    """A reward program broke its contract while it trained (the passive check); `.category` says how.

    The category is one of the checker's (`non_finite`, `wrong_shape`, `writes_input`, `exception`, ...),
    and the message names what, where and when, for the designer to repair it.
    """

    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category


class Interrupted(BaseException):
    """The user stopped the command (Ctrl-C, SIGTERM): raised in its main thread, and by any job it cut short.

    A BaseException, as KeyboardInterrupt is, so that no `except Exception` on the way (a retry loop) takes
    it for an error. Never recorded as a failure: an interrupted training or scoring leaves no record, so a
    resumed run does it again.
    """

    def __init__(self, signal_number: int | None = None, message: str = "interrupted"):
        super().__init__(message)
        self.signal_number = signal_number


class WorkerFileError(WorkerError):
    """A file in a worker's folder was refused: a link, not a regular file, too large, or not what it should hold."""


class WorkerProtocolError(WorkerError):
    """A worker sent a message or a result that is not what its job sends: its job ends, the run goes on."""
