"""A named, batched view of a MuJoCo simulation, built from the model alone.

`StateLayout` reads a MuJoCo model once and knows where every body, joint,
site and sensor lives in `MjData`. It copies the raw arrays of one simulation
into one row of a batch (`copier`), and turns a batch of raw arrays into a
`State` whose fields have names (`state.bodies.torso.pos`) and the batch as
their first axis. The same `State` is built on every backend: a CPU vector of
gymnasium environments fills the batch row by row, a batched simulator fills
it at once.

Cartesian quantities (bodies, sites, centre of mass, contact forces) are the
ones MuJoCo computed at the start of the last physics substep, while joint
positions and velocities are those after it. That is what MuJoCo leaves in
`MjData` after `mj_step` and what gymnasium's own rewards read, so a reward
written against a `State` sees exactly what the environment's reward sees.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

import mujoco
import numpy as np

from autoreward.errors import TaskError
from autoreward.refused_names import FORBIDDEN_ATTRIBUTES
from autoreward.task.files import READING_PREFIX

# name -> function(model) giving the per-environment shape of that raw array.
RAW_FIELDS: dict[str, Any] = {
    "time": lambda m: (),
    "qpos": lambda m: (m.nq,),
    "qvel": lambda m: (m.nv,),
    "xpos": lambda m: (m.nbody, 3),
    "xquat": lambda m: (m.nbody, 4),
    "xipos": lambda m: (m.nbody, 3),
    "cvel": lambda m: (m.nbody, 6),
    "subtree_com": lambda m: (m.nbody, 3),
    "cfrc_ext": lambda m: (m.nbody, 6),
    "site_xpos": lambda m: (m.nsite, 3),
    "sensordata": lambda m: (m.nsensordata,),
}

JOINT_KINDS = {
    int(mujoco.mjtJoint.mjJNT_FREE): "free",
    int(mujoco.mjtJoint.mjJNT_BALL): "ball",
    int(mujoco.mjtJoint.mjJNT_SLIDE): "slide",
    int(mujoco.mjtJoint.mjJNT_HINGE): "hinge",
}
JOINT_WIDTHS = {"free": (7, 6), "ball": (4, 3), "slide": (1, 1), "hinge": (1, 1)}


@dataclass(frozen=True)
class BodyInfo:
    name: str
    index: int
    parent: str
    mass: float
    root_index: int
    joints: tuple[str, ...]


@dataclass(frozen=True)
class JointInfo:
    name: str
    index: int
    kind: str
    body: str
    qpos_start: int
    qvel_start: int
    axis_world: tuple[float, float, float]
    limited: bool
    range: tuple[float, float]


@dataclass(frozen=True)
class SiteInfo:
    name: str
    index: int
    body: str


@dataclass(frozen=True)
class SensorInfo:
    name: str
    index: int
    kind: str
    start: int
    dim: int


@dataclass(frozen=True)
class ActuatorInfo:
    name: str
    target: str
    gear: float
    low: float
    high: float


def python_names(raw_names: list[str], prefix: str) -> list[str]:
    """Turn MuJoCo names into distinct Python identifiers; unnamed elements become prefix + index."""
    result: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_names):
        name = re.sub(r"\W", "_", raw) if raw else f"{prefix}{index}"
        if name[0].isdigit():
            name = f"{prefix}_{name}"
        # Keywords, and attribute names the reward rules refuse (a body called `system`), get a trailing underscore.
        if keyword.iskeyword(name) or name in {"names", "items"} or name in FORBIDDEN_ATTRIBUTES:
            name += "_"
        while name in seen:
            name = f"{name}_{index}"
        seen.add(name)
        result.append(name)
    return result


def _names(model: mujoco.MjModel, obj: mujoco.mjtObj, count: int) -> list[str]:
    return [mujoco.mj_id2name(model, obj, i) or "" for i in range(count)]


class ArrayLayout:
    """What both layouts share (this module's StateLayout, observation_state's ObservationLayout): raw arrays by
    their `shapes`, a batch of one copied now, and the check of an extra that names a State path. Each layout
    has its own `copier` and `state`."""

    def allocate(self, batch_size: int) -> dict[str, np.ndarray]:
        """Zeroed raw arrays for a batch of `batch_size` simulations."""
        return {name: np.zeros((batch_size, *shape)) for name, shape in self.shapes.items()}

    def snapshot(self, source) -> dict[str, np.ndarray]:
        """Raw arrays for a batch of one: `source` (what `copier` copies from) now."""
        out = self.allocate(1)
        self.copier(source, out, 0)()
        return out

    def check_extra(self, probe, name: str, path: str) -> None:
        """Raise TaskError unless extra `name` = `path` names an array field of State `probe`."""
        try:
            value = probe.resolve(path)
        except AttributeError as error:
            raise TaskError(f"extra {name!r} = {path!r} does not name a state field: {error}") from None
        if not isinstance(value, np.ndarray):
            raise TaskError(f"extra {name!r} = {path!r} must name an array field, got {type(value).__name__}")


@dataclass(frozen=True)
class StateLayout(ArrayLayout):
    """Where each named part of a MuJoCo model lives in the raw arrays of a State."""

    env_id: str
    dt: float
    frame_skip: int
    timestep: float
    shapes: dict[str, tuple[int, ...]]
    bodies: tuple[BodyInfo, ...]
    joints: tuple[JointInfo, ...]
    sites: tuple[SiteInfo, ...]
    sensors: tuple[SensorInfo, ...]
    actuators: tuple[ActuatorInfo, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    extras: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_model(
        cls,
        model: mujoco.MjModel,
        *,
        env_id: str,
        frame_skip: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
        extras: dict[str, str] | None = None,
    ) -> "StateLayout":
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)  # joint axes in the world frame at the rest pose
        body_names = python_names(_names(model, mujoco.mjtObj.mjOBJ_BODY, model.nbody), "body")
        joint_names = python_names(_names(model, mujoco.mjtObj.mjOBJ_JOINT, model.njnt), "joint")
        site_names = python_names(_names(model, mujoco.mjtObj.mjOBJ_SITE, model.nsite), "site")
        sensor_names = python_names(_names(model, mujoco.mjtObj.mjOBJ_SENSOR, model.nsensor), "sensor")
        actuator_names = python_names(_names(model, mujoco.mjtObj.mjOBJ_ACTUATOR, model.nu), "actuator")

        joints = tuple(
            JointInfo(
                name=joint_names[j],
                index=j,
                kind=JOINT_KINDS[int(model.jnt_type[j])],
                body=body_names[model.jnt_bodyid[j]],
                qpos_start=int(model.jnt_qposadr[j]),
                qvel_start=int(model.jnt_dofadr[j]),
                axis_world=tuple(float(round(v, 4)) + 0.0 for v in data.xaxis[j]),
                limited=bool(model.jnt_limited[j]),
                range=(float(model.jnt_range[j][0]), float(model.jnt_range[j][1])),
            )
            for j in range(model.njnt)
        )
        bodies = tuple(
            BodyInfo(
                name=body_names[b],
                index=b,
                parent=body_names[model.body_parentid[b]],
                mass=float(model.body_mass[b]),
                root_index=int(model.body_rootid[b]),
                joints=tuple(j.name for j in joints if j.body == body_names[b]),
            )
            for b in range(model.nbody)
        )
        sites = tuple(
            SiteInfo(name=site_names[s], index=s, body=body_names[model.site_bodyid[s]]) for s in range(model.nsite)
        )
        sensors = tuple(
            SensorInfo(
                name=sensor_names[s],
                index=s,
                kind=mujoco.mjtSensor(model.sensor_type[s]).name.removeprefix("mjSENS_").lower(),
                start=int(model.sensor_adr[s]),
                dim=int(model.sensor_dim[s]),
            )
            for s in range(model.nsensor)
        )
        actuators = tuple(
            ActuatorInfo(
                name=actuator_names[a],
                target=_actuator_target(model, a, joint_names, body_names, site_names),
                gear=float(model.actuator_gear[a][0]),
                low=float(model.actuator_ctrlrange[a][0]),
                high=float(model.actuator_ctrlrange[a][1]),
            )
            for a in range(model.nu)
        )
        layout = cls(
            env_id=env_id,
            dt=float(model.opt.timestep * frame_skip),
            frame_skip=int(frame_skip),
            timestep=float(model.opt.timestep),
            shapes={name: shape(model) for name, shape in RAW_FIELDS.items()},
            bodies=bodies,
            joints=joints,
            sites=sites,
            sensors=sensors,
            actuators=actuators,
            action_low=tuple(float(v) for v in np.asarray(action_low).ravel()),
            action_high=tuple(float(v) for v in np.asarray(action_high).ravel()),
            extras=dict(extras or {}),
        )
        layout.validate_extras()
        return layout

    @classmethod
    def from_env(cls, env, extras: dict[str, str] | None = None) -> "StateLayout":
        """Build the layout of a gymnasium MuJoCo environment (any wrapper depth)."""
        base = env.unwrapped
        if not hasattr(base, "model") or not isinstance(base.model, mujoco.MjModel):
            raise TaskError(
                f"{env.spec.id if env.spec else base!r} is not a MuJoCo environment: "
                "autoreward needs an environment whose `unwrapped.model` is a mujoco.MjModel"
            )
        return cls.from_model(
            base.model,
            env_id=env.spec.id if env.spec else type(base).__name__,
            frame_skip=int(base.frame_skip),
            action_low=env.action_space.low,
            action_high=env.action_space.high,
            extras=extras,
        )

    # --- raw arrays -------------------------------------------------------

    def wrap(self, env):
        """`env` as `copier` needs it: unchanged (the observation layout wraps it in a recorder)."""
        return env

    def source(self, env) -> mujoco.MjData:
        """What `copier` copies from: the environment's MjData."""
        return env.unwrapped.data

    def copier(self, data: mujoco.MjData, out: dict[str, np.ndarray], row: int, fields=None):
        """A function that copies one simulation's MjData into row `row` of a batch of raw arrays.

        `fields` names the raw arrays to copy (default: all of them). The hot path of
        training: MjData's arrays are views into fixed memory, so binding them once
        saves a Python attribute lookup per field per step.
        """
        fields = self.shapes.keys() if fields is None else set(fields)
        pairs = [
            (out[name][row], getattr(data, name))
            for name, shape in self.shapes.items()
            if name in fields and name != "time" and np.prod(shape) > 0  # e.g. no sensors: nothing to copy
        ]
        times = out["time"] if "time" in fields else None

        def copy() -> None:
            for target, source in pairs:
                target[...] = source  # half the cost of np.copyto, which goes through numpy's Python dispatch
            if times is not None:
                times[row] = data.time

        return copy

    def fill(self, out: dict[str, np.ndarray], batch: dict[str, np.ndarray], rows: np.ndarray | None = None) -> None:
        """Copy a batched simulator's arrays (each (N, ...), any float dtype) into a batch of raw arrays.

        The batched counterpart of `copier`: one copy per field for the whole
        batch, or for `rows` alone (e.g. the environments that just reset).
        """
        for name in self.shapes:
            target, source = out[name], batch[name]
            if rows is None:
                np.copyto(target, source.reshape(target.shape))
            else:
                target[rows] = source[rows].reshape((len(rows), *target.shape[1:]))

    def state(self, arrays: dict[str, np.ndarray]) -> "State":
        return State(self, arrays)

    def validate_extras(self) -> None:
        probe = self.state(self.allocate(1))
        for name, path in self.extras.items():
            if path.startswith(READING_PREFIX):  # a reading of the environment, for one without a MuJoCo model
                raise TaskError(
                    f"extra {name!r} = {path!r} reads the environment, which only a task without a MuJoCo model "
                    f"does; the State of {self.env_id} holds its model: name a State path such as "
                    f"'bodies.{self.bodies[-1].name}.pos'"
                )
            self.check_extra(probe, name, path)


def _actuator_target(model, a: int, joints: list[str], bodies: list[str], sites: list[str]) -> str:
    target = int(model.actuator_trnid[a][0])
    kind = int(model.actuator_trntype[a])
    if kind in (mujoco.mjtTrn.mjTRN_JOINT, mujoco.mjtTrn.mjTRN_JOINTINPARENT):
        return f"joint {joints[target]}"
    if kind == mujoco.mjtTrn.mjTRN_SITE:
        return f"site {sites[target]}"
    if kind == mujoco.mjtTrn.mjTRN_BODY:
        return f"body {bodies[target]}"
    return "tendon or other transmission"


# --- the named view -------------------------------------------------------


class SealedClass(type):
    """The metaclass of the State's views: their classes refuse attribute assignment and deletion too.

    A descriptor set on a State's class (`Body.pos = ...`) would change what every State returns, the task
    score's included. The State hands out no class (no public attribute holds one) and the static rules refuse
    every attribute assignment; this holds should a program reach a class all the same.
    """

    def __setattr__(cls, name: str, value: Any) -> None:
        raise AttributeError(
            f"{cls.__name__}.{name} cannot be set: the state's classes are read-only; keep the value in a variable"
        )

    def __delattr__(cls, name: str) -> None:
        raise AttributeError(f"{cls.__name__}.{name} cannot be deleted: the state's classes are read-only")


class ReadOnlyView(metaclass=SealedClass):
    """Refuses attribute assignment and deletion: a reward program cannot swap a field the task score reads.

    The State's objects are shared with the task score and the trajectory summary, so
    `next_state.joints.rootx.qpos = ...` would change what they read. Fields are set by `__init__`
    (through `object.__setattr__`) and by `cached_property` (straight into the instance's dict). Their
    classes are sealed too (`SealedClass`).
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{name!r} cannot be set: the state is read-only; compute into a new variable instead")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{name!r} cannot be deleted: the state is read-only")


class Group(ReadOnlyView):
    """Named members reachable as attributes: `state.bodies.torso`. Unknown names list the known ones."""

    # Members are also instance attributes, so `group.torso` is an ordinary attribute lookup:
    # reward programs read them every step, and `__getattr__` runs only after a failed lookup.
    __slots__ = ("_kind", "_members", "__dict__")

    def __init__(self, kind: str, members: dict[str, Any]):
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_members", members)
        self.__dict__.update(members)

    def __getattr__(self, name: str):
        # Reached only for names that are not members.
        try:
            return self._members[name]
        except KeyError:
            known = ", ".join(self._members) or "none"
            plural = "bodies" if self._kind == "body" else self._kind + "s"
            raise AttributeError(f"there is no {self._kind} named {name!r}; the {plural} are: {known}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __dir__(self):
        return list(self._members)


# Every field below that is a view of the raw arrays is a `cached_property`: the arrays are filled in
# place, never replaced, so a view made on first access stays current, and reward programs, which read
# the same fields at every step, pay an attribute lookup instead of a property call and a new view.
# The views are read-only (`ReadOnlyArrays`): a program computes into new arrays, never into its inputs.


class Body(ReadOnlyView):
    """One body of every simulation in the batch. Arrays are computed on access."""

    def __init__(self, arrays: dict[str, np.ndarray], info: BodyInfo):
        object.__setattr__(self, "_arrays", arrays)
        object.__setattr__(self, "_index", info.index)
        object.__setattr__(self, "_root", info.root_index)

    @cached_property
    def pos(self) -> np.ndarray:
        return self._arrays["xpos"][:, self._index]

    @cached_property
    def quat(self) -> np.ndarray:
        return self._arrays["xquat"][:, self._index]

    @cached_property
    def com(self) -> np.ndarray:
        return self._arrays["xipos"][:, self._index]

    @cached_property
    def angvel(self) -> np.ndarray:
        return self._arrays["cvel"][:, self._index, :3]

    @property
    def linvel(self) -> np.ndarray:
        # cvel's linear part is the velocity of the point at the subtree centre of
        # mass of the body's root; move it to the body's own origin.
        cvel = self._arrays["cvel"][:, self._index]
        lever = self.pos - self._arrays["subtree_com"][:, self._root]
        return cvel[:, 3:] + np.cross(cvel[:, :3], lever)

    @cached_property
    def cfrc_ext(self) -> np.ndarray:
        return self._arrays["cfrc_ext"][:, self._index]


class Joint(ReadOnlyView):
    """One joint of every simulation in the batch: `qpos` and `qvel` in its own coordinates."""

    def __init__(self, arrays: dict[str, np.ndarray], info: JointInfo):
        npos, nvel = JOINT_WIDTHS[info.kind]
        object.__setattr__(self, "_arrays", arrays)
        # Scalar joints give (N,) arrays, multi-dof joints (N, k).
        object.__setattr__(
            self, "_qpos", info.qpos_start if npos == 1 else slice(info.qpos_start, info.qpos_start + npos)
        )
        object.__setattr__(
            self, "_qvel", info.qvel_start if nvel == 1 else slice(info.qvel_start, info.qvel_start + nvel)
        )

    @cached_property
    def qpos(self) -> np.ndarray:
        return self._arrays["qpos"][:, self._qpos]

    @cached_property
    def qvel(self) -> np.ndarray:
        return self._arrays["qvel"][:, self._qvel]


class Site(ReadOnlyView):
    def __init__(self, arrays: dict[str, np.ndarray], info: SiteInfo):
        object.__setattr__(self, "_arrays", arrays)
        object.__setattr__(self, "_index", info.index)

    @cached_property
    def pos(self) -> np.ndarray:
        return self._arrays["site_xpos"][:, self._index]


def read_only(array: np.ndarray) -> np.ndarray:
    """A view of `array` that refuses writes (`+=`, slice assignment, `out=`, `np.copyto`); `array` stays writable.

    Made through a read-only memoryview, not by clearing the view's flag: a flag can be set back
    (`view.setflags(write=True)`, since the buffer is writable) and `view.base` is the buffer itself;
    here neither the view nor its slices can be made writable. The memoryview (`view.base`) is read-only
    too, but its `.obj` is the writable buffer: the reward rules refuse `.base` and `.obj` for that.
    """
    return np.asarray(memoryview(array).toreadonly())


class ReadOnlyArrays(dict):
    """A State's raw arrays as it hands them out: read-only views of the buffers, one per field, kept.

    The buffers stay writable (the simulator copies into them every step); only the views refuse writes,
    so a reward program that edits its inputs in place raises instead of changing what the task score,
    the trajectory summary and the next step read. A view is made on a field's first read and kept: the
    buffers are filled in place, never replaced, so it stays current and later reads cost a dict lookup.
    """

    def __init__(self, source: dict[str, np.ndarray]):
        super().__init__()
        self._source = source

    def __missing__(self, name: str) -> np.ndarray:
        view = self[name] = read_only(self._source[name])
        return view


class LaidOutState(ReadOnlyView):
    """What every State is: a layout and its read-only arrays by name (N first), read through named views,
    by dotted paths (`resolve`) and cut into rows. `State` lays out a MuJoCo model's data; the observation
    State (sim/observation_state.py) an observation."""

    # The views a dotted path may pass through besides the State itself (see `resolve`). Private: a public
    # attribute holding classes would hand a program the State's classes.
    _walkable: tuple[type, ...] = ()

    def __init__(self, layout, arrays: dict[str, np.ndarray]):
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_arrays", ReadOnlyArrays(arrays))

    @cached_property
    def time(self) -> np.ndarray:
        return self._arrays["time"]

    def resolve(self, path: str):
        """The field at a dotted path such as 'bodies.target.pos'.

        The path walks the named view only (groups, bodies, joints, sites, the observation): it stops at the
        first array, so a reward program cannot use it as a `getattr` with a built string
        (`resolve("qpos.tofile")`).
        """
        value: Any = self
        for part in path.split("."):
            if part.startswith("_"):
                raise AttributeError(f"{part!r} is private")
            if not isinstance(value, (LaidOutState, *self._walkable)):
                raise AttributeError(f"{path!r} goes past a field of the state at {part!r}; index the array instead")
            value = getattr(value, part)
        return value

    def rows(self, index):
        """The State of a subset of the batch (an index array, slice or int kept as a batch of one)."""
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1)
        return type(self)(self._layout, {name: self._arrays[name][index] for name in self._layout.shapes})

    def arrays(self) -> dict[str, np.ndarray]:
        """The raw arrays behind this State (shared, not copied), every field by name."""
        # Read field by field, never iterated: the reward path's mapping can hold fewer keys (see vec_env).
        return {name: self._arrays[name] for name in self._layout.shapes}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._layout.env_id}, batch_size={self.batch_size})"


class State(LaidOutState):
    """The state of N simulations. Every array field has N as its first axis; every array is read-only."""

    _walkable = (Group, Body, Joint, Site)

    @property
    def batch_size(self) -> int:
        return int(self._arrays["qpos"].shape[0])

    @property
    def dt(self) -> float:
        return self._layout.dt

    @cached_property
    def qpos(self) -> np.ndarray:
        return self._arrays["qpos"]

    @cached_property
    def qvel(self) -> np.ndarray:
        return self._arrays["qvel"]

    @cached_property
    def com(self) -> np.ndarray:
        return self._arrays["subtree_com"][:, 0]

    @cached_property
    def bodies(self) -> Group:
        return Group("body", {b.name: Body(self._arrays, b) for b in self._layout.bodies})

    @cached_property
    def joints(self) -> Group:
        return Group("joint", {j.name: Joint(self._arrays, j) for j in self._layout.joints})

    @cached_property
    def sites(self) -> Group:
        return Group("site", {s.name: Site(self._arrays, s) for s in self._layout.sites})

    @cached_property
    def sensors(self) -> Group:
        data = self._arrays["sensordata"]
        # A scalar sensor gives (N,), as the stub says; wider ones (N, dim).
        return Group(
            "sensor",
            {
                s.name: data[:, s.start] if s.dim == 1 else data[:, s.start : s.start + s.dim]
                for s in self._layout.sensors
            },
        )

    @cached_property
    def extras(self) -> Group:
        return Group("extra", {n: self.resolve(p) for n, p in self._layout.extras.items()})


def concatenate(states: list[State]) -> State:
    """One State holding the batches of several, in order."""
    layout = states[0]._layout
    return layout.state({name: np.concatenate([s._arrays[name] for s in states]) for name in layout.shapes})
