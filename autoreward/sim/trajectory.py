"""A numeric summary of what a trained policy did, for the analyzer and the reward report.

The key quantities are chosen from the model alone, so they exist for any
MuJoCo environment: for every body attached to the world that can move, its
position and linear velocity along x, y and z, how upright it is (when it
floats freely), the angle of each hinge joining it to the world, and the
task's extras. Plus how hard the policy pushes (mean |action|). Each
quantity is summarised by its range, and by its average early and late in
an episode, which shows trends such as drifting backwards or falling over.
Quantities that never change, or repeat another, are left out.

Then what the reward reads, which the model alone cannot choose (a lifted
foot and a turned ankle look alike in the root's quantities): the State
paths its text reads (`contract/reads.py`, given to the recorder as plain
records: no program runs here), each labelled with the components it feeds.
A path read at a column (`pos[:, 2]`) is that column; one read whole is its
value, each of its columns when it has 2 or 3 (those that never change are
left out), else its norm; the action read whole is its norm. A reward's
`state` and `next_state` read the same quantity a step apart, so both are
summarised from the step's end, as the key quantities are. At most
`MAX_READ_ROWS` rows, in the order the program first reads them.

And how often each body is in contact, for a MuJoCo model: the share of
steps in which the contact force MuJoCo computed on the body (the force part
of its `cfrc_ext`, which gymnasium's MuJoCo environments compute after every
step) is not 0. That counts a contact with anything, the floor or another
body; in the shipped models but Humanoid a body's geoms collide with the
floor only. A contact MuJoCo found but that pushes with no force (a foot
leaving the ground) does not count. Bodies that never touch are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from autoreward.contract.reads import ACTION, fields_of
from autoreward.records import ContactShare, QuantityStats, ReadQuantity, RewardRead, TrajectorySummary
from autoreward.sim.observation_state import ObservationLayout
from autoreward.sim.state import State, StateLayout

Extract = Callable[[State, np.ndarray], np.ndarray]
MAX_ROOT_BODIES = 3
AXES = "xyz"
MAX_READ_ROWS = 8  # of what the reward reads, in the summary
MAX_CONTACT_ROWS = 6  # bodies in contact, the most often touching ones
CONTACT_NEWTONS = 1e-6  # a contact force above this is a contact: MuJoCo's are 0, or 0.03 N and more (measured)
# The unit of a State field, by its name (a joint's qpos and qvel by the joint's kind).
FIELD_UNITS = {"pos": "m", "com": "m", "linvel": "m/s", "angvel": "rad/s", "time": "s"}
JOINT_UNITS = {("hinge", "qpos"): "rad", ("hinge", "qvel"): "rad/s", ("slide", "qpos"): "m", ("slide", "qvel"): "m/s"}


def key_quantities(layout: StateLayout | ObservationLayout) -> list[tuple[str, str, Extract]]:
    """(name, unit, extractor) for the quantities worth summarising in this model."""
    if isinstance(layout, ObservationLayout):
        return _observed_quantities(layout)
    world = layout.bodies[0].name
    roots = [b for b in layout.bodies[1:] if b.parent == world and b.joints][:MAX_ROOT_BODIES]
    joint_kinds = {j.name: j.kind for j in layout.joints}
    quantities: list[tuple[str, str, Extract]] = []
    for body in roots:
        for axis, letter in enumerate(AXES):
            quantities.append((f"{body.name} position {letter}", "m", _body_field(body.name, "pos", axis)))
        for axis, letter in enumerate(AXES):
            quantities.append((f"{body.name} velocity {letter}", "m/s", _body_field(body.name, "linvel", axis)))
        if any(joint_kinds[j] == "free" for j in body.joints):
            quantities.append((f"{body.name} uprightness (1 upright, -1 upside down)", "", _upright(body.name)))
        for joint in body.joints:
            if joint_kinds[joint] == "hinge":
                quantities.append((f"{joint} angle", "rad", _joint_angle(joint)))
    for name, path in layout.extras.items():
        quantities.extend(_extra_quantities(layout, name, path))
    quantities.append(("mean |action|", "", lambda state, action: np.abs(action).mean(axis=1)))
    return quantities


def _observed_quantities(layout: ObservationLayout) -> list[tuple[str, str, Extract]]:
    """Every column of the observation, the extras, and the action: its mean |value|, or for Discrete actions
    the mean action index."""
    quantities: list[tuple[str, str, Extract]] = [
        (f.path.removeprefix("obs."), f.unit, _observed_column(f.index)) for f in layout.fields
    ]
    for name, path in layout.extras.items():
        quantities.extend(_extra_quantities(layout, name, path))
    if layout.discrete_actions:
        quantities.append(("action index", "", lambda state, action: np.asarray(action, dtype=np.float64)))
    else:
        quantities.append(("mean |action|", "", lambda state, action: np.abs(action).mean(axis=1)))
    return quantities


def _observed_column(index: int) -> Extract:
    return lambda state, action: state.obs[:, index]


def _body_field(body: str, field: str, axis: int) -> Extract:
    return lambda state, action: getattr(getattr(state.bodies, body), field)[:, axis]


def _upright(body: str) -> Extract:
    def extract(state: State, action: np.ndarray) -> np.ndarray:
        w, x, y, z = np.moveaxis(getattr(state.bodies, body).quat, -1, 0)
        return 1.0 - 2.0 * (x * x + y * y)  # z-component of the body's own z axis

    return extract


def _joint_angle(joint: str) -> Extract:
    return lambda state, action: getattr(state.joints, joint).qpos.reshape(len(action), -1)[:, 0]


def _extra_quantities(layout: StateLayout | ObservationLayout, name: str, path: str) -> list[tuple[str, str, Extract]]:
    probe = layout.state(layout.allocate(1)).resolve(path)
    width = int(np.prod(probe.shape[1:]))
    if width > 3:
        return []  # a long vector summarised element by element would drown the rest
    labels = AXES if width == 3 else [str(i) for i in range(width)]
    return [
        (f"{name} {label}" if width > 1 else name, "", _extra_field(path, i)) for i, label in zip(range(width), labels)
    ]


def _extra_field(path: str, index: int) -> Extract:
    return lambda state, action: state.resolve(path).reshape(len(action), -1)[:, index]


@dataclass(frozen=True)
class ReadRow:
    """One row of what the reward reads: its label, unit, the components it feeds, and how to take it."""

    name: str
    unit: str
    feeds: tuple[str, ...] | None
    named: bool  # the program named this value itself (a column, a scalar field): kept even when it never changes
    extract: Extract


def read_rows(layout: StateLayout | ObservationLayout, reads: tuple[RewardRead, ...]) -> list[ReadRow]:
    """The rows of the reads that name fields of this layout's State (see the module's docstring)."""
    probe = layout.state(layout.allocate(1))
    width_of_action = max(1, len(getattr(layout, "action_low", ())))
    rows: list[ReadRow] = []
    for read in fields_of(reads, probe):
        if read.path == ACTION:
            width, unit = width_of_action, ""
        else:
            width, unit = int(np.prod(np.shape(probe.resolve(read.path))[1:])), _unit(layout, read.path)
        column = read.column
        if column is not None:
            if not -width <= column < width:
                continue  # a column the field does not have: the check would have failed the program
            column %= width
            if read.path.endswith(".cfrc_ext"):  # MuJoCo's wrench: a torque, then a force
                unit = "N m" if column < 3 else "N"
            rows.append(ReadRow(f"{read.path}[:, {column}]", unit, read.feeds, True, _read_column(read.path, column)))
        elif width == 1:
            rows.append(ReadRow(read.path, unit, read.feeds, True, _read_column(read.path, 0)))
        elif width <= 3 and read.path != ACTION:
            rows += [
                ReadRow(f"{read.path}[:, {i}]", unit, read.feeds, False, _read_column(read.path, i))
                for i in range(width)
            ]
        else:
            rows.append(ReadRow(f"|{read.path}|", unit, read.feeds, False, _read_norm(read.path)))
    return rows


def _unit(layout: StateLayout | ObservationLayout, path: str) -> str:
    parts = path.split(".")
    if isinstance(layout, StateLayout) and parts[0] == "joints" and len(parts) == 3:
        kind = next((j.kind for j in layout.joints if j.name == parts[1]), "")
        return JOINT_UNITS.get((kind, parts[2]), "")
    if parts[0] in ("bodies", "sites", "time") or path == "com":
        return FIELD_UNITS.get(parts[-1], "")
    return ""


def _values(state: State, action: np.ndarray, path: str) -> np.ndarray:
    value = action if path == ACTION else state.resolve(path)
    return np.asarray(value, dtype=np.float64).reshape(len(action), -1)


def _read_column(path: str, column: int) -> Extract:
    return lambda state, action: _values(state, action, path)[:, column]


def _read_norm(path: str) -> Extract:
    return lambda state, action: np.linalg.norm(_values(state, action, path), axis=1)


class TrajectoryRecorder:
    """Collects the key quantities of every step of a batch of one environment, episode by episode, what the
    reward reads (`reads`, from its text: `contract/reads.py`), and which bodies are in contact."""

    def __init__(self, layout: StateLayout | ObservationLayout, reads: tuple[RewardRead, ...] = ()):
        self._quantities = key_quantities(layout)
        self._reads = read_rows(layout, tuple(reads))
        # Contact is read from the State's cfrc_ext, which only a MuJoCo model's State has.
        self._bodies = [b.name for b in layout.bodies[1:]] if isinstance(layout, StateLayout) else []
        self._current: list[np.ndarray] = []
        self._episodes: list[np.ndarray] = []  # each (steps, quantities + reads + bodies)
        self._terminated: list[bool] = []

    def observe(self, state: State, action: np.ndarray, next_state: State) -> None:
        action = np.asarray(action)
        values = [float(extract(next_state, action)[0]) for _, _, extract in self._quantities]
        values += [float(row.extract(next_state, action)[0]) for row in self._reads]
        if self._bodies:
            forces = next_state.arrays()["cfrc_ext"][0, 1:, 3:]  # each body's (torque, force): its force
            values += (np.linalg.norm(forces, axis=1) > CONTACT_NEWTONS).tolist()
        self._current.append(np.asarray(values, dtype=np.float64))

    def end_episode(self, terminated: bool) -> None:
        if self._current:
            self._episodes.append(np.stack(self._current))
            self._terminated.append(terminated)
        self._current = []

    def summary(self) -> TrajectorySummary | None:
        if not self._episodes:
            return None
        table = np.concatenate(self._episodes)
        stats = []
        for column, (name, unit, _) in enumerate(self._quantities):
            every = table[:, column]
            constant = every.max() - every.min() < 1e-9
            repeated = any(np.array_equal(every, table[:, earlier]) for earlier in range(column))
            if constant or repeated:
                continue  # e.g. y in a planar model, or an extra that aliases a body already shown
            stats.append(self._stats(column, name, unit))
        reads = []
        for offset, row in enumerate(self._reads):
            column = len(self._quantities) + offset
            every = table[:, column]
            if not np.isfinite(every).all() or (not row.named and every.max() - every.min() < 1e-9):
                continue  # e.g. y of a position read whole in a planar model, or a quaternion's norm
            if len(reads) < MAX_READ_ROWS:
                reads.append(ReadQuantity(self._stats(column, row.name, row.unit), row.feeds))
        return TrajectorySummary(
            episodes=len(self._episodes),
            terminated=int(sum(self._terminated)),
            length_mean=float(np.mean([len(e) for e in self._episodes])),
            quantities=tuple(stats),
            reads=tuple(reads),
            contacts=self._contacts(table, len(self._quantities) + len(self._reads)),
        )

    def _stats(self, column: int, name: str, unit: str) -> QuantityStats:
        every = np.concatenate([episode[:, column] for episode in self._episodes])
        start, end = self._early_and_late(column)
        return QuantityStats(
            name=name,
            unit=unit,
            mean=float(every.mean()),
            min=float(every.min()),
            max=float(every.max()),
            start=start,
            end=end,
        )

    def _early_and_late(self, column: int) -> tuple[float, float]:
        """The mean over the first and over the last tenth of each episode, averaged over episodes."""
        series = [episode[:, column] for episode in self._episodes]
        starts = [s[: max(1, len(s) // 10)].mean() for s in series]
        ends = [s[-max(1, len(s) // 10) :].mean() for s in series]
        return float(np.mean(starts)), float(np.mean(ends))

    def _contacts(self, table: np.ndarray, first: int) -> tuple[ContactShare, ...]:
        """The bodies that touched anything (at most MAX_CONTACT_ROWS, the most often touching), from column
        `first` of the steps' table on."""
        shares = table[:, first:].mean(axis=0) if self._bodies else np.zeros(0)
        touching = [i for i in np.argsort(-shares, kind="stable") if shares[i] > 0][:MAX_CONTACT_ROWS]
        found = []
        for index in sorted(touching):  # in the model's order: a foot beside its leg
            start, end = self._early_and_late(first + int(index))
            found.append(ContactShare(self._bodies[index], float(shares[index]), start, end))
        return tuple(found)


def summary_text(summary: TrajectorySummary) -> str:
    """A fixed-width table of a summary, as the analyzer and the report show it."""
    early = summary.terminated
    header = f"{'mean':>9} {'min':>9} {'max':>9} {'early':>9} {'late':>9}"
    lines = [
        f"{summary.episodes} held-out episodes, mean length {summary.length_mean:.1f} steps; "
        f"{early} ended early (the environment terminated them), {summary.episodes - early} ran to the time limit.",
        "",
        f"{'quantity':<44} {header}",
    ]
    lines += [_row(q) for q in summary.quantities]
    if summary.reads:
        lines += ["", f"{'read by the reward (the components it feeds)':<44} {header}"]
        for read in summary.reads:
            feeds = "(not traced)" if read.feeds is None else ", ".join(read.feeds) or "the total, no component"
            lines.append(f"{_row(read.stats)}  feeds: {feeds}")
    if summary.contacts:
        lines += ["", f"{'in contact (share of steps)':<44} {'all':>9} {'early':>9} {'late':>9}"]
        lines += [f"{c.body:<44} {c.share:>9.2f} {c.start:>9.2f} {c.end:>9.2f}" for c in summary.contacts]
    lines.append("")
    lines.append("early / late: mean over the first / last tenth of each episode.")
    if summary.contacts:
        lines.append("in contact: a contact force on the body (from the floor, or another body it collides with).")
    return "\n".join(lines)


def _row(q: QuantityStats) -> str:
    name = f"{q.name} ({q.unit})" if q.unit else q.name
    return f"{name:<44} {q.mean:>9.3g} {q.min:>9.3g} {q.max:>9.3g} {q.start:>9.3g} {q.end:>9.3g}"


class TransitionSampler:
    """Keeps every `stride`-th transition of held-out episodes, and each episode's last, as raw State arrays,
    for re-scoring later.

    Pre-screening (`prescreen.py`) scores these stored transitions with a new
    reward program, without training it, and compares its ranking of the
    episodes with their known task scores. The step that ends an episode is
    always kept: a reward's bonus for reaching a goal (or its penalty for a
    fall) is paid there, and a sample that missed it made most episodes of a
    "-1 a step, +100 at the flag" reward look the same. Each kept transition
    has a `weight`, the steps it stands for (those up to the next kept one;
    the last step stands for itself), so a weighted mean over the kept ones
    estimates the episode's mean reward per step.
    """

    def __init__(self, stride: int):
        self.stride = max(1, stride)
        self._step = 0
        self._episode = 0
        self._kept: list[tuple[int, dict, np.ndarray, dict]] = []
        self._weights: list[int] = []
        self._kept_steps: list[int] = []  # of the episode under way
        self._latest: tuple[dict, np.ndarray, dict] | None = None  # its latest transition, when not kept

    def observe(self, state: State, action: np.ndarray, next_state: State) -> None:
        # Copied now whether kept or not: a simulator may reuse a State's arrays for the next step.
        transition = (_as_float32(state), np.asarray(action, np.float32).copy(), _as_float32(next_state))
        if self._step % self.stride == 0:
            self._keep(transition)
            self._latest = None
        else:
            self._latest = transition
        self._step += 1

    def _keep(self, transition: tuple[dict, np.ndarray, dict]) -> None:
        self._kept.append((self._episode, *transition))
        self._kept_steps.append(self._step)

    def end_episode(self) -> None:
        if self._latest is not None:  # the episode's last step, which the stride passed over
            self._step -= 1
            self._keep(self._latest)
            self._step += 1
        steps = self._kept_steps + [self._step]
        self._weights += [later - earlier for earlier, later in zip(steps, steps[1:])]
        self._episode += 1
        self._step = 0
        self._kept_steps = []
        self._latest = None

    def save(self, path) -> None:
        if not self._kept:
            return
        arrays = {
            "episode": np.array([e for e, *_ in self._kept]),
            "action": np.concatenate([a for _, _, a, _ in self._kept]),
            # An episode not ended when saved: its transitions stand for themselves.
            "weight": np.array(self._weights + [1] * (len(self._kept) - len(self._weights)), dtype=np.float64),
        }
        for name in self._kept[0][1]:
            arrays[f"before.{name}"] = np.concatenate([b[name] for _, b, _, _ in self._kept])
            arrays[f"after.{name}"] = np.concatenate([a[name] for *_, a in self._kept])
        np.savez_compressed(path, **arrays)


def _as_float32(state: State) -> dict[str, np.ndarray]:
    return {name: array.astype(np.float32) for name, array in state.arrays().items()}


class EpisodeRecorder:
    """Every transition of held-out episodes as raw State arrays (float64, as the State holds them), so a
    reward program can score them afterwards in a worker of its own (`loop/reward_returns.py`).

    Within an episode a step's start is the previous step's end, so each episode is kept as its first
    state, then the end of every step and the action taken: `first.<field>` (one row an episode),
    `after.<field>` and `action` (one row a step), `episode` (each step's episode).
    """

    def __init__(self):
        self._first: list[dict] = []
        self._after: list[dict] = []
        self._actions: list[np.ndarray] = []
        self._episodes: list[int] = []
        self._episode = 0
        self._started = False

    def observe(self, state: State, action: np.ndarray, next_state: State) -> None:
        if not self._started:
            self._first.append({k: v.copy() for k, v in state.arrays().items()})
            self._started = True
        self._after.append({k: v.copy() for k, v in next_state.arrays().items()})
        self._actions.append(np.array(action, copy=True))
        self._episodes.append(self._episode)

    def end_episode(self) -> None:
        self._episode += 1
        self._started = False

    def save(self, path) -> None:
        if not self._after:
            return
        arrays = {"episode": np.array(self._episodes), "action": np.concatenate(self._actions)}
        for name in self._first[0]:
            arrays[f"first.{name}"] = np.concatenate([f[name] for f in self._first])
            arrays[f"after.{name}"] = np.concatenate([a[name] for a in self._after])
        np.savez(path, **arrays)


def episodes_of(arrays: dict[str, np.ndarray], names) -> list[tuple[dict, np.ndarray, dict]]:
    """`EpisodeRecorder`'s arrays back as one (before, action, after) batch per episode, in episode order."""
    episode = arrays["episode"]
    batches = []
    for number, index in enumerate(np.unique(episode)):
        rows = np.flatnonzero(episode == index)
        after = {name: arrays[f"after.{name}"][rows] for name in names}
        before = {
            name: np.concatenate([arrays[f"first.{name}"][number : number + 1], after[name][:-1]]) for name in names
        }
        batches.append((before, arrays["action"][rows], after))
    return batches
