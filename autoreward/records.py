"""Every record that moves between the parts of autoreward, in one place.

Records are frozen dataclasses. `to_dict` and `from_dict` turn them into
JSON-ready dicts and back, so each one can be written to the run folder as
it is made and read again on resume.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


class CheckCategory(str, enum.Enum):
    """How a reward program failed its check (or OK)."""

    OK = "ok"
    SYNTAX = "syntax"
    SIGNATURE = "signature"
    FORBIDDEN = "forbidden"
    EXCEPTION = "exception"
    WRONG_OUTPUT = "wrong_output"
    WRONG_SHAPE = "wrong_shape"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    NOT_VECTORIZED = "not_vectorized"
    NON_DETERMINISTIC = "non_deterministic"
    TOO_SLOW = "too_slow"
    TIMEOUT = "timeout"
    KILLED = "killed"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking a reward program: a category and a message written for its author."""

    category: CheckCategory
    message: str
    line: int | None = None
    components: tuple[str, ...] = ()
    seconds_per_call: float | None = None

    @property
    def ok(self) -> bool:
        return self.category is CheckCategory.OK


Reduce = Literal["mean", "sum", "last"]


@dataclass(frozen=True)
class Fitness:
    """The trusted measure of how well a task was done; never shown to a reward designer.

    `step` is a numpy expression over `state`, `action` and `next_state` giving
    one value per environment and step; `reduce` turns an episode's values into
    one number (its mean, its sum, or its last value).
    """

    step: str
    reduce: Reduce
    description: str
    higher_is_better: bool = True

    def succeeded(self, value: float, threshold: float | None) -> bool | None:
        """Whether an episode's fitness reaches the success threshold (None when there is none)."""
        if threshold is None:
            return None
        return value >= threshold if self.higher_is_better else value <= threshold


@dataclass(frozen=True)
class Budget:
    algo: Literal["ppo", "sac"] = "ppo"
    steps: int = 200_000
    n_envs: int = 4
    eval_episodes: int = 5
    curve_points: int = 10


@dataclass(frozen=True)
class Task:
    """What to do, in which environment, and how success is measured."""

    id: str
    env_id: str
    description: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    fitness: Fitness | None = None
    success_threshold: float | None = None
    max_episode_steps: int | None = None
    budget: Budget = Budget()
    extras: dict[str, str] = field(default_factory=dict)
    human_reward: str | None = None  # a reward program reproducing the environment's own reward
    source: str | None = None  # the file it was read from


@dataclass(frozen=True)
class ComponentStats:
    mean: float
    min: float
    max: float


@dataclass(frozen=True)
class CurvePoint:
    """Training statistics over the steps since the previous point."""

    step: int
    wall_seconds: float
    steps_per_second: float
    reward_mean: float
    components: dict[str, ComponentStats]
    episodes: int
    episode_length: float | None
    fitness: float | None
    # True when no episode ended in the window and `fitness` comes from episodes still running.
    fitness_partial: bool = False


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    length: int
    fitness: float | None
    native_return: float
    reward_return: float
    component_returns: dict[str, float]
    terminated: bool


@dataclass(frozen=True)
class Evaluation:
    """A trained policy scored on held-out episodes with fixed seeds."""

    episodes: tuple[EpisodeResult, ...]
    fitness_mean: float | None
    fitness_std: float | None
    length_mean: float
    success_rate: float | None


RewardSource = Literal["program", "native", "sparse"]


@dataclass(frozen=True)
class TrainingResult:
    task_id: str
    reward_source: RewardSource
    algo: str
    steps: int
    seed: int
    n_envs: int
    curve: tuple[CurvePoint, ...]
    evaluation: Evaluation
    wall_seconds: float
    steps_per_second: float


@dataclass(frozen=True)
class NormalizedScore:
    """Eureka's human-normalized score: (F - F_sparse) / |F_human - F_sparse|."""

    fitness: float
    fitness_human: float
    fitness_sparse: float
    score: float | None  # None when the human and sparse baselines tie

    @classmethod
    def compute(cls, fitness: float, human: float, sparse: float, higher_is_better: bool = True) -> "NormalizedScore":
        gap = abs(human - sparse)
        sign = 1.0 if higher_is_better else -1.0
        score = None if gap < 1e-12 else sign * (fitness - sparse) / gap
        return cls(fitness=fitness, fitness_human=human, fitness_sparse=sparse, score=score)


# --- serialisation ---------------------------------------------------------


def to_dict(record) -> Any:
    """A JSON-ready copy of a record (enums become their values, tuples lists)."""
    if dataclasses.is_dataclass(record):
        return {f.name: to_dict(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, enum.Enum):
        return record.value
    if isinstance(record, (list, tuple)):
        return [to_dict(v) for v in record]
    if isinstance(record, dict):
        return {k: to_dict(v) for k, v in record.items()}
    return record


def from_dict(cls, data: Any):
    """Rebuild a record of type `cls` from `to_dict`'s output."""
    return _convert(cls, data)


def _convert(kind, value):
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind)}
        return kind(**{k: _convert(hints[k], v) for k, v in value.items() if k in known})
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if origin is tuple:
        args = typing.get_args(kind)
        return tuple(_convert(args[0], v) for v in value) if args else tuple(value)
    if origin is dict:
        _, value_kind = typing.get_args(kind)
        return {k: _convert(value_kind, v) for k, v in value.items()}
    return value


def write_json(path: Path, record) -> None:
    """Write a record (or plain data) as indented JSON, atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(to_dict(record), indent=2, allow_nan=True) + "\n")
    temporary.replace(path)


def read_json(path: Path, cls=None):
    data = json.loads(Path(path).read_text())
    return from_dict(cls, data) if cls is not None else data


# --- workers -----------------------------------------------------------------

WorkerStatus = Literal["ok", "error", "timeout", "idle_timeout", "killed"]


@dataclass(frozen=True)
class WorkerLimits:
    """What a worker process may spend before its supervisor stops it."""

    wall_seconds: float = 3600.0
    idle_seconds: float = 60.0  # longest silence between two messages
    memory_bytes: int | None = 8 * 1024**3  # address space (RLIMIT_AS)
    file_bytes: int = 2 * 1024**3  # largest file it may write (RLIMIT_FSIZE)
    cpu_seconds: float | None = None  # RLIMIT_CPU; None: the wall budget plus a few seconds
    processes: int = 512  # threads and processes beyond what the user already runs (RLIMIT_NPROC; not for root)


@dataclass(frozen=True)
class WorkerOutcome:
    """How a worker process ended, and the result it reported if it got that far."""

    status: WorkerStatus
    message: str
    result: Any = None
    exit_code: int | None = None
    log_tail: str = ""


@dataclass(frozen=True)
class Baselines:
    """The two references a fitness is normalized against, trained with the same budget and seed."""

    task_id: str
    algo: str
    steps: int
    seed: int
    human_source: str  # the human reward program's file, or "environment" for the environment's own reward
    human: TrainingResult
    sparse: TrainingResult

    def normalize(self, fitness: float, higher_is_better: bool = True) -> NormalizedScore:
        return NormalizedScore.compute(
            fitness, self.human.evaluation.fitness_mean, self.sparse.evaluation.fitness_mean, higher_is_better
        )
