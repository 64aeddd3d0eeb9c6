"""A numeric summary of what a trained policy did, for the analyzer and the reward report.

The quantities are chosen from the model alone, so they exist for any MuJoCo
environment: for every body attached to the world that can move, its
position and linear velocity along x, y and z, how upright it is (when it
floats freely), the angle of each hinge joining it to the world, and the
task's extras. Plus how hard the policy pushes (mean |action|). Each
quantity is summarised by its range, and by its average early and late in
an episode, which shows trends such as drifting backwards or falling over.
Quantities that never change, or repeat another, are left out.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from autoreward.records import QuantityStats, TrajectorySummary
from autoreward.sim.observation_state import ObservationLayout
from autoreward.sim.state import State, StateLayout

Extract = Callable[[State, np.ndarray], np.ndarray]
MAX_ROOT_BODIES = 3
AXES = "xyz"


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


class TrajectoryRecorder:
    """Collects the key quantities of every step of a batch of one environment, episode by episode."""

    def __init__(self, layout: StateLayout | ObservationLayout):
        self._quantities = key_quantities(layout)
        self._current: list[np.ndarray] = []
        self._episodes: list[np.ndarray] = []  # each (steps, quantities)
        self._terminated: list[bool] = []

    def observe(self, state: State, action: np.ndarray, next_state: State) -> None:
        values = [float(extract(next_state, np.asarray(action))[0]) for _, _, extract in self._quantities]
        self._current.append(np.asarray(values))

    def end_episode(self, terminated: bool) -> None:
        if self._current:
            self._episodes.append(np.stack(self._current))
            self._terminated.append(terminated)
        self._current = []

    def summary(self) -> TrajectorySummary | None:
        if not self._episodes:
            return None
        stats = []
        table = np.concatenate(self._episodes)
        for column, (name, unit, _) in enumerate(self._quantities):
            every = table[:, column]
            constant = every.max() - every.min() < 1e-9
            repeated = any(np.array_equal(every, table[:, earlier]) for earlier in range(column))
            if constant or repeated:
                continue  # e.g. y in a planar model, or an extra that aliases a body already shown
            series = [episode[:, column] for episode in self._episodes]
            starts = [s[: max(1, len(s) // 10)].mean() for s in series]
            ends = [s[-max(1, len(s) // 10) :].mean() for s in series]
            stats.append(
                QuantityStats(
                    name=name,
                    unit=unit,
                    mean=float(every.mean()),
                    min=float(every.min()),
                    max=float(every.max()),
                    start=float(np.mean(starts)),
                    end=float(np.mean(ends)),
                )
            )
        return TrajectorySummary(
            episodes=len(self._episodes),
            terminated=int(sum(self._terminated)),
            length_mean=float(np.mean([len(e) for e in self._episodes])),
            quantities=tuple(stats),
        )


def summary_text(summary: TrajectorySummary) -> str:
    """A fixed-width table of a summary, as the analyzer and the report show it."""
    early = summary.terminated
    lines = [
        f"{summary.episodes} held-out episodes, mean length {summary.length_mean:.1f} steps; "
        f"{early} ended early (the environment terminated them), {summary.episodes - early} ran to the time limit.",
        "",
        f"{'quantity':<44} {'mean':>9} {'min':>9} {'max':>9} {'early':>9} {'late':>9}",
    ]
    for q in summary.quantities:
        name = f"{q.name} ({q.unit})" if q.unit else q.name
        lines.append(f"{name:<44} {q.mean:>9.3g} {q.min:>9.3g} {q.max:>9.3g} {q.start:>9.3g} {q.end:>9.3g}")
    lines.append("")
    lines.append("early / late: mean over the first / last tenth of each episode.")
    return "\n".join(lines)


class TransitionSampler:
    """Keeps every `stride`-th transition of held-out episodes as raw State arrays, for re-scoring later.

    Pre-screening (`prescreen.py`) scores these stored transitions with a new
    reward program, without training it, and compares its ranking of the
    episodes with their known task scores.
    """

    def __init__(self, stride: int):
        self.stride = max(1, stride)
        self._step = 0
        self._episode = 0
        self._kept: list[tuple[int, dict, np.ndarray, dict]] = []

    def observe(self, state: State, action: np.ndarray, next_state: State) -> None:
        if self._step % self.stride == 0:
            before = {k: v.astype(np.float32) for k, v in state.arrays().items()}
            after = {k: v.astype(np.float32) for k, v in next_state.arrays().items()}
            self._kept.append((self._episode, before, np.asarray(action, np.float32).copy(), after))
        self._step += 1

    def end_episode(self) -> None:
        self._episode += 1
        self._step = 0

    def save(self, path) -> None:
        if not self._kept:
            return
        arrays = {
            "episode": np.array([e for e, *_ in self._kept]),
            "action": np.concatenate([a for _, _, a, _ in self._kept]),
        }
        for name in self._kept[0][1]:
            arrays[f"before.{name}"] = np.concatenate([b[name] for _, b, _, _ in self._kept])
            arrays[f"after.{name}"] = np.concatenate([a[name] for *_, a in self._kept])
        np.savez_compressed(path, **arrays)


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
