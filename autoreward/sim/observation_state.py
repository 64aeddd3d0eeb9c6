"""A named, batched view of any gymnasium environment with a vector observation: there, the observation is the state.

Where no MuJoCo model exists (classic control, Box2D, an environment that is not a robot), autoreward cannot
read bodies and joints, so the State holds what the policy sees: `state.obs`, the observation of each of the N
environments, with its columns named where the environment documents them. Gymnasium's classic-control
environments document their observation in their docstring's "Observation Space" table (Pendulum-v1: `x =
cos(theta)`, `y = sin(theta)`, `Angular Velocity`); `ObservationLayout.from_env` parses that table into field
names (`state.obs.cos_theta`) and keeps the docstring's other sections (the description, the action, the start
and the end of an episode; never the reward, which the designer writes anew) for the State's description.
Without a table the columns are `obs[:, i]`, with the bounds of the observation space.

The observation reaches the batch through `ObservationRecorder`, a gymnasium wrapper that keeps the last
observation and the time since the episode began; `CapturingVecEnv` copies it into one row of the batch as it
copies a MuJoCo simulation's `MjData`. What the environment knows and its observation leaves out (LunarLander's
`game_over`) a task adds as readings: extras whose path starts with `env.` (task/files.py), which the recorder reads
from `env.unwrapped` after each reset and step into one more raw array, `readings`, and `state.extras.<name>`
shows as an (N,) column. `state_layout` chooses the layout for an environment: MuJoCo's where it
has a model, the observation's where it has a flat `Box` observation, else one sentence saying what is supported.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from functools import cached_property

import gymnasium
import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from autoreward.errors import TaskError
from autoreward.sim.state import ArrayLayout, Group, LaidOutState, ReadOnlyView, StateLayout, python_names
from autoreward.task.files import READING_PREFIX, environment_readings, read_environment

SUPPORTED = (
    "autoreward supports MuJoCo environments, and any other environment whose observation is a flat Box "
    "(a vector of numbers) and whose action is a Box or Discrete space"
)
# Docstring sections the description keeps, by the words their titles start with. The reward is never kept:
# the designer writes a new one, and the environment's own would anchor it.
KEPT_SECTIONS = {
    "description": ("description",),
    "dynamics": ("transition dynamics", "dynamics"),
    "action": ("action space", "action"),
    "observation": ("observation space", "observation"),
    "start": ("starting state", "start"),
    "end": ("episode end", "episode termination", "episode truncation", "termination"),
}


@dataclass(frozen=True)
class ObservationField:
    """One column of the observation: its name in the State, what the documentation says it is, its bounds."""

    name: str
    index: int
    meaning: str  # the documentation's words; "" where the environment documents none
    low: float
    high: float
    unit: str = ""

    @property
    def path(self) -> str:
        """How a reward program reads it: `obs.cos_theta`, or `obs[:, 3]` for a column the docs do not name."""
        return f"obs.{self.name}" if self.name else f"obs[:, {self.index}]"


def _sections(doc: str) -> dict[str, str]:
    """The docstring's `## Title` sections, by lowercase title, each as its text."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in inspect.cleandoc(doc).splitlines():
        heading = re.match(r"^#{2,3}\s+(.+?):?\s*$", line)
        if heading:
            current = found.setdefault(heading.group(1).strip().lower(), [])
        elif current is not None:
            current.append(line)
    return {title: "\n".join(lines).strip() for title, lines in found.items()}


def _kept(sections: dict[str, str]) -> dict[str, str]:
    kept = {}
    for key, starts in KEPT_SECTIONS.items():
        texts = [text for title, text in sections.items() if title.startswith(starts) and text]
        if texts:
            kept[key] = "\n\n".join(_plain(text) for text in texts)
    return kept


def _continuous_actions(docs: dict[str, str], sections: dict[str, str]) -> dict[str, str]:
    """Docs whose action section lists the discrete actions of an environment made with continuous ones (the
    docstring of LunarLanderContinuous is LunarLander's): that list gives way to what its `continuous`
    argument says, where the docstring has one, else to nothing."""
    arguments = sections.get("arguments", "")
    said = re.search(r"^\s*\*\s*`continuous`(.+?)(?=^\s*\*\s|\Z)", arguments, flags=re.M | re.S)
    kept = {key: text for key, text in docs.items() if key != "action"}
    if said:
        kept["action"] = _plain("`continuous`" + said.group(1))
    return kept


def _plain(text: str) -> str:
    """Section text without code blocks, images or HTML comments, which tell a reward designer nothing."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"</?sub>", "", text)
    text = re.sub(r"<sup>(.*?)</sup>", r"^\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _table(text: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in `text`, each by its lowercase column title."""
    rows = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    if len(rows) < 3:
        return []
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    titles = [title.lower() for title in cells[0]]
    return [dict(zip(titles, row)) for row in cells[2:] if len(row) == len(titles)]


def _without_table(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith("|")).strip()


def field_name(meaning: str) -> str:
    """A Python name for a documented quantity: "x = cos(theta)" → cos_theta, "velocity of the car" → velocity,
    "Angular velocity of `theta1`" → angular_velocity_theta1."""
    text = meaning.replace("`", "")
    if "=" in text:
        text = text.split("=", 1)[1]
    text = re.sub(r"\bcosine of\b", "cos", text, flags=re.I)
    text = re.sub(r"\bsine of\b", "sin", text, flags=re.I)
    head, of, tail = text.partition(" of ")
    if of:  # "of the car" says whose it is; "of theta1" says which one, and stays
        text = head if tail.split()[:1] and tail.split()[0].lower() in ("the", "a", "an", "its") else f"{head} {tail}"
    text = re.split(r"\s+(?:along|in|relative|with|from|at)\s+", text)[0]
    return "_".join(re.findall(r"[a-z0-9]+", text.lower()))


def _number(text: str, default: float) -> float:
    try:
        return float(text)
    except ValueError:
        return default


def _observation_fields(space, observation_doc: str) -> tuple[ObservationField, ...]:
    low, high = (np.asarray(bound, dtype=np.float64).ravel() for bound in (space.low, space.high))
    rows = _table(observation_doc)
    # A table is used only when it has a row for every column, numbered in order.
    documented = len(rows) == len(low) and all(list(row.values())[0] == str(i) for i, row in enumerate(rows))
    meanings = [list(row.values())[1] for row in rows] if documented else [""] * len(low)
    units = [row.get("unit", "") for row in rows] if documented else [""] * len(low)
    names = (
        python_names([field_name(m) or f"x{i}" for i, m in enumerate(meanings)], "x") if documented else [""] * len(low)
    )
    return tuple(
        ObservationField(names[i], i, meanings[i], float(low[i]), float(high[i]), units[i]) for i in range(len(low))
    )


def _action_meanings(space, action_doc: str) -> tuple[str, ...]:
    """What each action column (Box) or each action value (Discrete) does, where the documentation says."""
    count = int(space.n) if isinstance(space, gymnasium.spaces.Discrete) else int(np.prod(space.shape))
    rows = _table(action_doc)
    if len(rows) == count:
        return tuple(list(row.values())[1] for row in rows)
    listed = dict(re.findall(r"^\s*-\s*(\d+)\s*:\s*(.+?)\s*$", action_doc, flags=re.M))
    if len(listed) == count and all(str(i) in listed for i in range(count)):
        return tuple(listed[str(i)] for i in range(count))
    return ()


@dataclass(frozen=True)
class ObservationLayout(ArrayLayout):
    """Where each named column of an environment's observation lives in the raw arrays of an ObservationState."""

    env_id: str
    dt: float | None  # seconds between steps, where the environment says; else None and `time` counts steps
    fields: tuple[ObservationField, ...]
    shapes: dict[str, tuple[int, ...]]
    discrete_actions: int  # the number of actions of a Discrete action space; 0 for a Box
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    action_meanings: tuple[str, ...]
    docs: dict[str, str] = field(default_factory=dict)  # the kept docstring sections (KEPT_SECTIONS)
    extras: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env, extras: dict[str, str] | None = None) -> "ObservationLayout":
        """The layout of a gymnasium environment with a flat Box observation; TaskError for any other."""
        env_id = env.spec.id if env.spec else type(env.unwrapped).__name__
        observation, action = env.observation_space, env.action_space
        if not isinstance(observation, gymnasium.spaces.Box) or len(observation.shape) != 1:
            shape = f" of shape {observation.shape}" if isinstance(observation, gymnasium.spaces.Box) else ""
            raise TaskError(f"{env_id} has a {type(observation).__name__} observation{shape}; {SUPPORTED}")
        if not isinstance(action, (gymnasium.spaces.Box, gymnasium.spaces.Discrete)):
            raise TaskError(f"{env_id} has a {type(action).__name__} action space; {SUPPORTED}")
        sections = _sections(type(env.unwrapped).__doc__ or "")
        docs = _kept(sections)
        discrete = int(action.n) if isinstance(action, gymnasium.spaces.Discrete) else 0
        if not discrete and re.search(r"\bdiscrete actions?\b", docs.get("action", ""), re.I):
            docs = _continuous_actions(docs, sections)
        readings = environment_readings(extras or {})
        layout = cls(
            env_id=env_id,
            dt=_step_seconds(env.unwrapped),
            fields=_observation_fields(observation, docs.get("observation", "")),
            shapes={
                "time": (),
                "obs": (int(observation.shape[0]),),
                **({"readings": (len(readings),)} if readings else {}),
            },
            discrete_actions=discrete,
            action_low=() if discrete else tuple(float(v) for v in np.asarray(action.low).ravel()),
            action_high=() if discrete else tuple(float(v) for v in np.asarray(action.high).ravel()),
            action_meanings=_action_meanings(action, docs.get("action", "")),
            docs=docs,
            extras=dict(extras or {}),
        )
        layout.validate_extras()
        return layout

    @property
    def readings(self) -> dict[str, str]:
        """The extras that read the environment, by name: the attribute of `env.unwrapped` each reads."""
        return environment_readings(self.extras)

    def reading_column(self, path: str) -> int:
        """The column of the `readings` raw array that holds the reading `path` ("env.game_over")."""
        return list(self.readings.values()).index(path.removeprefix(READING_PREFIX))

    @property
    def documented(self) -> bool:
        """Whether the observation's columns have names from the environment's documentation."""
        return any(f.meaning for f in self.fields)

    # --- how observations reach the batch ------------------------------------------------------------

    def wrap(self, env) -> "ObservationRecorder":
        """`env` with a recorder of its observation, which `source` hands to `copier`."""
        return ObservationRecorder(env, self.dt, tuple(self.readings.values()))

    def source(self, env) -> "ObservationRecorder":
        """What `copier` copies from: the recorder `wrap` put around `env` (found through any wrappers above it)."""
        while not isinstance(env, ObservationRecorder):
            if not hasattr(env, "env"):
                raise TypeError("the environment has no ObservationRecorder: make it with layout.wrap")
            env = env.env
        return env

    def copier(self, source: "ObservationRecorder", out: dict[str, np.ndarray], row: int, fields=None):
        """A function that copies the recorder's observation and time into row `row` of a batch of raw arrays."""
        fields = self.shapes.keys() if fields is None else set(fields)
        observations = out["obs"][row] if "obs" in fields else None
        times = out["time"] if "time" in fields else None
        readings = out["readings"][row] if "readings" in fields and "readings" in out else None

        def copy() -> None:
            if observations is not None:
                observations[...] = source.observation
            if times is not None:
                times[row] = source.time
            if readings is not None:
                readings[...] = source.readings

        return copy

    def state(self, arrays: dict[str, np.ndarray]) -> "ObservationState":
        return ObservationState(self, arrays)

    def validate_extras(self) -> None:
        """Each extra that names a State path names an array; readings of the environment are checked on the
        environment itself (task.files.check_readings), after a reset."""
        probe = self.state(self.allocate(1))
        for name, path in self.extras.items():
            if not path.startswith(READING_PREFIX):
                self.check_extra(probe, name, path)


def _step_seconds(unwrapped) -> float | None:
    """Seconds between two steps where the environment says: `dt` (Pendulum, Acrobot), `tau` (CartPole), or one
    frame at its `render_fps` for Box2D, whose world steps 1/FPS each step; None where it says nothing."""
    for name in ("dt", "tau"):
        value = getattr(unwrapped, name, None)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    if type(unwrapped).__module__.startswith("gymnasium.envs.box2d"):
        fps = unwrapped.metadata.get("render_fps")
        return 1.0 / fps if fps else None
    return None


class ObservationRecorder(gymnasium.Wrapper):
    """Keeps the last observation (float64), the time since the episode began, and the task's readings of the
    environment (attribute paths of `env.unwrapped`, each a float), for `ObservationLayout.copier`."""

    def __init__(self, env, dt: float | None, readings: tuple[str, ...] = ()):
        super().__init__(env)
        self._dt = dt
        self._readings = readings
        self.observation = np.zeros(env.observation_space.shape)
        self.readings = np.zeros(len(readings))
        self.steps = 0

    def _read(self) -> None:
        unwrapped = self.env.unwrapped
        for column, path in enumerate(self._readings):
            self.readings[column] = read_environment(unwrapped, path)

    @property
    def time(self) -> float:
        return self.steps * self._dt if self._dt is not None else float(self.steps)

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self.observation[...] = observation
        self.steps = 0
        if self._readings:
            self._read()
        return observation, info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.observation[...] = observation
        self.steps += 1
        if self._readings:
            self._read()
        return observation, reward, terminated, truncated, info


# --- the named view ---------------------------------------------------------------------------------


class Observation(NDArrayOperatorsMixin, ReadOnlyView):
    """The observation of N environments: an (N, k) array (index it, do arithmetic on it, pass it to numpy) whose
    documented columns are also named fields of shape (N,). Read-only, like every State array."""

    __slots__ = ("_array", "_names", "__dict__")

    def __init__(self, array: np.ndarray, fields: tuple[ObservationField, ...]):
        object.__setattr__(self, "_array", array)
        object.__setattr__(self, "_names", tuple(f.name for f in fields if f.name))
        # Named columns are instance attributes: reward programs read them every step as plain lookups.
        self.__dict__.update({f.name: array[:, f.index] for f in fields if f.name})

    def __getattr__(self, name: str):
        # Reached only for names that are not fields.
        known = f"its fields are {', '.join(self._names)}" if self._names else "its columns have no names"
        raise AttributeError(f"the observation has no field {name!r}; {known} (or index it: obs[:, i])")

    def __getitem__(self, index):
        return self._array[index]

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        arrays = [value._array if isinstance(value, Observation) else value for value in inputs]
        if "out" in kwargs:  # writing into the observation fails as writing into any State array does
            kwargs["out"] = tuple(value._array if isinstance(value, Observation) else value for value in kwargs["out"])
        return getattr(ufunc, method)(*arrays, **kwargs)

    def copy(self) -> np.ndarray:
        """A writable copy of the (N, k) array, as an ndarray's `copy()` gives: the State itself stays read-only."""
        return self._array.copy()

    @property
    def shape(self) -> tuple[int, ...]:
        return self._array.shape

    @property
    def ndim(self) -> int:
        return self._array.ndim

    @property
    def dtype(self):
        return self._array.dtype

    def __len__(self) -> int:
        return len(self._array)

    def __dir__(self):
        return list(self._names)

    def __repr__(self) -> str:
        return f"Observation(shape={self._array.shape}, fields={', '.join(self._names)})"


class ObservationState(LaidOutState):
    """The state of N environments as they are observed. Every array has N as its first axis and is read-only."""

    _walkable = (Observation,)

    @property
    def batch_size(self) -> int:
        return int(self._arrays["obs"].shape[0])

    @property
    def dt(self) -> float:
        if self._layout.dt is None:
            raise AttributeError(f"{self._layout.env_id} does not say how long a step lasts, so the state has no dt")
        return self._layout.dt

    @cached_property
    def obs(self) -> Observation:
        return Observation(self._arrays["obs"], self._layout.fields)

    @cached_property
    def extras(self) -> Group:
        return Group("extra", {n: self.resolve(p) for n, p in self._layout.extras.items()})

    def resolve(self, path: str):
        """The field at a dotted path such as 'obs.cos_theta'; it stops at the first array (see State.resolve).
        A reading of the environment ('env.game_over', one of the task's extras) is its (N,) column."""
        if path.startswith(READING_PREFIX):
            if path.removeprefix(READING_PREFIX) not in self._layout.readings.values():
                raise AttributeError(f"{path!r} is not one of the task's readings of the environment")
            return self._arrays["readings"][:, self._layout.reading_column(path)]
        return super().resolve(path)


def state_layout(env, extras: dict[str, str] | None = None) -> StateLayout | ObservationLayout:
    """The layout of any supported environment: its MuJoCo model where it has one, else its observation."""
    import mujoco

    if isinstance(getattr(env.unwrapped, "model", None), mujoco.MjModel):
        return StateLayout.from_env(env, extras=extras)
    return ObservationLayout.from_env(env, extras=extras)
