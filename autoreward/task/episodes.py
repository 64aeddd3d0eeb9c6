"""When an episode ends and where it starts, in the State's own fields, for the designer.

A reward is written against facts the environment knows: Hopper ends an episode when its torso's height
or angle leaves a range, and starts it at 1.25 m. For gymnasium's MuJoCo environments the rule is read
from the environment object itself, after `gymnasium.make` with the task's `env_kwargs` (gymnasium v5
keeps its health ranges and `terminate_when_unhealthy` as attributes), so a task that changes them is
told the rule it trains under. For any other MuJoCo environment (a user's own robot) it is measured:
random actions for up to `MEASURED_STEPS` steps, and for every State quantity whose values where an
episode ended lie apart from its values elsewhere, the observed threshold, said to be observed.
Where it starts is read from `init_qpos`, and how the robot stands there is measured (task.standing).
Measurements are cached (`~/.cache/autoreward/episodes`): endings per environment and keyword arguments,
standing per compiled model and start pose.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import textwrap
from pathlib import Path

import numpy as np

from autoreward.sim.observation_state import ObservationLayout
from autoreward.sim.state import JOINT_WIDTHS, StateLayout
from autoreward.task.standing import MEASUREMENT_VERSION, measure_standing, standing_lines

MEASURED_STEPS = 20_000
CACHE_VARIABLE = "AUTOREWARD_CACHE"  # where measurements are kept; default ~/.cache/autoreward
# Environments of gymnasium whose episodes end only at the time limit.
NEVER_EARLY = {"HalfCheetahEnv", "SwimmerEnv", "ReacherEnv", "PusherEnv"}


def episode_facts(env, layout: StateLayout | ObservationLayout, env_kwargs: dict, max_steps: int | None) -> list[str]:
    """Comment lines for the State stub: when an episode ends, then where it starts and how it stands there."""
    limit = f"after {max_steps} steps (the time limit)" if max_steps else "at the time limit"
    if isinstance(layout, ObservationLayout):
        return _observed_facts(env, layout, env_kwargs, max_steps, limit)
    return [*_ending(env, layout, env_kwargs, max_steps, limit), *_start(env, layout)]


def _observed_facts(env, layout: ObservationLayout, env_kwargs: dict, max_steps: int | None, limit: str) -> list[str]:
    """An environment without a MuJoCo model: the rule its documentation states, else one measured on random
    actions; and where it starts, in its documentation's words."""
    if "end" in layout.docs:
        ending = comment_lines(
            f"When an episode ends (the environment's documentation): {layout.docs['end']}\n\nHere it ends at the "
            f"latest {limit}."
        )
    else:
        ending = _measured(env, layout, env_kwargs, max_steps, limit)
    if "start" not in layout.docs:
        return ending
    return [
        *ending,
        *comment_lines(f"Where an episode starts (the environment's documentation): {layout.docs['start']}"),
    ]


LIST_ITEM = re.compile(r"^\s*(?:[-*]|\d+[.)])\s")


def comment_lines(text: str, indent: str = "", width: int = 110) -> list[str]:
    """Documentation prose as comment lines: paragraphs joined and wrapped, list items each on their own lines."""
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        items: list[str] = []
        for line in paragraph.splitlines():
            if not line.strip():
                continue
            if LIST_ITEM.match(line) or not items:
                items.append(line.strip())
            else:
                items[-1] += " " + line.strip()
        if not items:
            continue
        if lines:
            lines.append(f"{indent}#")
        for item in items:
            hang = "  " if LIST_ITEM.match(item) else ""
            wrapped = textwrap.wrap(" ".join(item.split()), width=width - len(indent) - 2, subsequent_indent=hang)
            lines += [f"{indent}# {part}" for part in wrapped]
    return lines


# --- when it ends ---------------------------------------------------------------------------------


def _ending(env, layout: StateLayout, env_kwargs: dict, max_steps: int | None, limit: str) -> list[str]:
    unwrapped = env.unwrapped
    kind = type(unwrapped).__name__
    own = type(unwrapped).__module__.startswith("gymnasium.envs.mujoco")
    if own and kind in NEVER_EARLY:
        return [f"# When an episode ends: never early; only {limit}."]
    if own and kind in ("HopperEnv", "Walker2dEnv", "AntEnv", "HumanoidEnv"):
        if not unwrapped._terminate_when_unhealthy:
            return [
                f"# When an episode ends: never early (this task sets terminate_when_unhealthy = false); only {limit}."
            ]
        z, angle = _qpos_field(layout, 1), _qpos_field(layout, 2)
        if kind in ("HopperEnv", "Walker2dEnv"):
            conditions = [
                f"{z} (the torso's height) {_leaves(unwrapped._healthy_z_range, 'm')}",
                f"{angle} (the torso's angle) {_leaves(unwrapped._healthy_angle_range, 'rad')}",
            ]
            if kind == "HopperEnv":
                low, high = unwrapped._healthy_state_range
                conditions.append(f"any other joint position or any joint velocity leaves ({low:g}, {high:g})")
        else:
            z = _qpos_field(layout, 2)
            closed = kind == "AntEnv"  # Ant's range includes its ends; Humanoid's does not
            conditions = [f"{z} (the torso's height) {_leaves(unwrapped._healthy_z_range, 'm', closed)}"]
            if kind == "AntEnv":
                conditions.append("any joint position or velocity is not finite")
        return [f"# When an episode ends: early, as soon as {_either(conditions)}; else {limit}."]
    if own and kind == "InvertedPendulumEnv":
        angle = _qpos_field(layout, 1)
        return [
            f"# When an episode ends: early, as soon as {angle} (the pole's angle) leaves [-0.2, 0.2] rad; else {limit}."
        ]
    if own and kind == "InvertedDoublePendulumEnv" and layout.sites:
        tip = layout.sites[0].name
        return [
            f"# When an episode ends: early, as soon as sites.{tip}.pos[:, 2] (the tip's height) falls to 1 m or below; else {limit}."
        ]
    return _measured(env, layout, env_kwargs, max_steps, limit)


def _leaves(bounds, unit: str, closed: bool = False) -> str:
    """How a quantity breaks a health range: "falls to 0.7 m or below", "leaves (-0.2, 0.2) rad"."""
    low, high = (float(b) for b in bounds)
    if not np.isfinite(high):
        return f"falls {'below' if closed else 'to'} {low:g} {unit}{'' if closed else ' or below'}"
    if not np.isfinite(low):
        return f"rises {'above' if closed else 'to'} {high:g} {unit}{'' if closed else ' or above'}"
    return f"leaves {'[' if closed else '('}{low:g}, {high:g}{']' if closed else ')'} {unit}"


def _either(conditions: list[str]) -> str:
    return conditions[0] if len(conditions) == 1 else ", ".join(conditions[:-1]) + ", or " + conditions[-1]


def _qpos_field(layout: StateLayout, index: int) -> str:
    """The State field holding qpos[index]: `joints.rootz.qpos`, or `joints.root.qpos[:, 2]` for a wider joint."""
    for joint in layout.joints:
        width = JOINT_WIDTHS[joint.kind][0]
        if joint.qpos_start <= index < joint.qpos_start + width:
            name = f"joints.{joint.name}.qpos"
            return name if width == 1 else f"{name}[:, {index - joint.qpos_start}]"
    return f"qpos[:, {index}]"


def _measured(
    env, layout: StateLayout | ObservationLayout, env_kwargs: dict, max_steps: int | None, limit: str
) -> list[str]:
    key = [layout.env_id, env_kwargs, max_steps, MEASURED_STEPS]
    found = _cached(key, lambda: measure_endings(env, layout))
    if found["early"] == 0:
        return [
            f"# When an episode ends: {found['episodes']} episodes of random actions ({found['steps']} steps) "
            f"never ended early; they ended {limit}. (Observed, not the environment's rule.)"
        ]
    if not found["thresholds"]:
        return [
            f"# When an episode ends: {found['early']} of {found['episodes']} episodes of random actions ended "
            f"early, at no threshold of a single State quantity that could be seen; else {limit}. "
            "(Observed, not the environment's rule.)"
        ]
    said = "; ".join(
        f"{t['field']} {t['direction']} {t['value']:.3g} {'or below' if t['direction'] == 'fell to' else 'or above'}"
        for t in found["thresholds"]
    )
    return [
        f"# When an episode ends (observed on random actions, not the environment's rule): {found['early']} of "
        f"{found['episodes']} episodes ended early, each when {said} (n = {found['early']}); else {limit}."
    ]


def measure_endings(env, layout: StateLayout | ObservationLayout, steps: int = MEASURED_STEPS, seed: int = 0) -> dict:
    """Random actions for `steps` steps: how many episodes ended early, and the thresholds that tell them apart.

    A quantity (each scalar joint position, each body's height) is a threshold when its value at every early
    end lies beyond all but 1% of its values in the other states visited: below them ("fell to" the highest
    ending value) or above them ("rose to" the lowest). At most three are reported, the widest apart first.
    """
    fields = _quantities(layout)
    data = env.unwrapped.data if isinstance(layout, StateLayout) else None
    env.action_space.seed(seed)
    env.reset(seed=seed)
    visited, ended, episodes, early = [], [], 0, 0
    for _ in range(steps):
        observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
        source = observation if data is None else data  # what the readers read: the observation, or MjData
        values = [float(read(source)) for _, read in fields]
        (ended if terminated else visited).append(values)
        if terminated or truncated:
            episodes += 1
            early += int(terminated)
            env.reset()
    thresholds = []
    if ended and visited:
        ends, rest = np.array(ended), np.array(visited)
        for column, (name, _) in enumerate(fields):
            low, high = np.quantile(rest[:, column], [0.01, 0.99])
            spread = max(float(np.ptp(rest[:, column])), 1e-9)
            if ends[:, column].max() < low:
                thresholds.append((float(low - ends[:, column].max()) / spread, name, "fell to", ends[:, column].max()))
            elif ends[:, column].min() > high:
                thresholds.append(
                    (float(ends[:, column].min() - high) / spread, name, "rose to", ends[:, column].min())
                )
    thresholds.sort(reverse=True)
    return {
        "steps": steps,
        "episodes": episodes,
        "early": early,
        "thresholds": [{"field": n, "direction": d, "value": float(v)} for _, n, d, v in thresholds[:3]],
    }


def _quantities(layout: StateLayout | ObservationLayout) -> list[tuple[str, object]]:
    """(State field, reader of MjData) for each scalar joint position and each moving body's height; for an
    observation, (field, reader of the observation) for each of its columns."""
    if isinstance(layout, ObservationLayout):
        return [(f.path, lambda o, i=f.index: o[i]) for f in layout.fields]
    found = []
    for joint in layout.joints:
        if joint.kind in ("hinge", "slide"):
            found.append((f"joints.{joint.name}.qpos", lambda d, i=joint.qpos_start: d.qpos[i]))
        elif joint.kind == "free":
            found.append((f"joints.{joint.name}.qpos[:, 2]", lambda d, i=joint.qpos_start + 2: d.qpos[i]))
    for body in layout.bodies[1:]:
        found.append((f"bodies.{body.name}.pos[:, 2]", lambda d, i=body.index: d.xpos[i, 2]))
    return found


def _cached(key: list, measure) -> dict:
    """The measurement stored under `key` (a list of what it depends on), else `measure()`, stored."""
    key = json.dumps(key, sort_keys=True, default=str)
    root = Path(os.environ.get(CACHE_VARIABLE) or Path.home() / ".cache" / "autoreward")
    path = root / "episodes" / (hashlib.sha256(key.encode()).hexdigest()[:16] + ".json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    found = measure()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(found))
        temporary.replace(path)
    except OSError:
        pass  # a cache that cannot be written costs a measurement next time, nothing more
    return found


# --- where it starts --------------------------------------------------------------------------------


def _start(env, layout: StateLayout) -> list[str]:
    """The reset State: each joint's position (and the moving root bodies' positions) before reset noise."""
    import mujoco

    unwrapped = env.unwrapped
    init = getattr(unwrapped, "init_qpos", None)
    if init is None:
        return []
    data = mujoco.MjData(unwrapped.model)
    data.qpos[:] = init
    mujoco.mj_forward(unwrapped.model, data)
    joints = []
    for joint in layout.joints:
        width = JOINT_WIDTHS[joint.kind][0]
        values = init[joint.qpos_start : joint.qpos_start + width]
        shown = f"{values[0]:.3g}" if width == 1 else "(" + ", ".join(f"{v:.3g}" for v in values) + ")"
        joints.append(f"joints.{joint.name}.qpos = {shown}")
    roots = [b for b in layout.bodies[1:] if b.parent == layout.bodies[0].name and b.joints]
    bodies = [f"bodies.{b.name}.pos = (" + ", ".join(f"{v:.3g}" for v in data.xpos[b.index]) + ")" for b in roots]
    noise = getattr(unwrapped, "_reset_noise_scale", None)
    spread = f", each joint position and velocity then perturbed by noise of scale {noise:g}" if noise else ""
    lines = [f"# Where an episode starts: {', '.join(joints) or 'no joints'}{spread}."]
    if bodies:
        lines.append(f"#   At that pose: {', '.join(bodies)} [m].")
    return lines + _standing(unwrapped, layout, roots)


def _standing(unwrapped, layout: StateLayout, roots) -> list[str]:
    """How the robot stands from the start pose (task.standing), measured once per model and pose."""
    import mujoco

    model = unwrapped.model
    compiled = np.zeros(mujoco.mj_sizeModel(model), dtype=np.uint8)
    mujoco.mj_saveModel(model, None, compiled)  # the model itself, so an edited robot file is measured anew
    init_qvel = getattr(unwrapped, "init_qvel", np.zeros(model.nv))
    names = [b.name for b in layout.bodies]
    key = [
        "standing",
        MEASUREMENT_VERSION,
        mujoco.__version__,
        hashlib.sha256(compiled.tobytes()).hexdigest(),
        [float(v) for v in unwrapped.init_qpos],
        [float(v) for v in init_qvel],
        layout.frame_skip,
        names,
    ]

    def measure() -> dict:
        roots_at = [b.index for b in roots]
        return measure_standing(model, unwrapped.init_qpos, init_qvel, layout.frame_skip, names, roots_at)

    return standing_lines(_cached(key, measure))
