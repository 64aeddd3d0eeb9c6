"""The text a reward designer reads: a Python class stub of the State, generated from the MuJoCo model, or for
an environment without one from its observation and the environment's own documentation."""

from __future__ import annotations

import re

from autoreward.config import Task
from autoreward.contract.forms import SIGNATURES
from autoreward.sim.observation_state import ObservationField, ObservationLayout, state_layout
from autoreward.sim.state import JOINT_WIDTHS, JointInfo, StateLayout
from autoreward.task.episodes import comment_lines, episode_facts

JOINT_COMMENTS = {
    "hinge": ("angle [rad]", "angular velocity [rad/s]"),
    "slide": ("position along its axis [m]", "velocity along its axis [m/s]"),
    "free": (
        "x, y, z [m] then orientation quaternion w, x, y, z",
        "linear velocity x, y, z [m/s] (world frame) then angular velocity [rad/s] (body frame)",
    ),
    "ball": ("orientation quaternion w, x, y, z", "angular velocity [rad/s] (body frame)"),
}


def _shape(width: int) -> str:
    return "(N,)" if width == 1 else f"(N, {width})"


def _axis(joint: JointInfo) -> str:
    names = {(1.0, 0.0, 0.0): "x", (0.0, 1.0, 0.0): "y", (0.0, 0.0, 1.0): "z"}
    for vector, name in names.items():
        if joint.axis_world == vector:
            return f"world {name}"
        if tuple(-v + 0.0 for v in vector) == joint.axis_world:
            return f"world -{name}"
    return "(" + ", ".join(f"{v:g}" for v in joint.axis_world) + ") in the world"


def _joint_line(joint: JointInfo) -> str:
    if joint.kind in ("hinge", "slide"):
        motion = "rotates about" if joint.kind == "hinge" else "slides along"
        limits = f", range [{joint.range[0]:.3g}, {joint.range[1]:.3g}]" if joint.limited else ""
        return f"    {joint.name}: {joint.kind.capitalize()}Joint  # {motion} {_axis(joint)} at rest; moves body {joint.body}{limits}"
    return f"    {joint.name}: {joint.kind.capitalize()}Joint  # moves body {joint.body} freely"


def describe_layout(layout: StateLayout, max_episode_steps: int | None = None, facts: list[str] = ()) -> str:
    """The State stub for one environment: names, shapes, units and frames, generated from its model."""
    kinds = sorted({j.kind for j in layout.joints}, key=list(JOINT_WIDTHS).index)
    n_action = len(layout.action_low)
    lines = [
        "import numpy as np",
        "",
        "",
        "class State:",
        f'    """{layout.env_id}: the simulation of N environments at one moment. Every array has N as its first axis.',
        "",
        "    Units: metres, radians, seconds, kilograms, newtons. World frame: z points up, gravity along -z.",
        "    Quaternions are (w, x, y, z). Cartesian values (bodies, sites, com) are computed at the",
        f"    start of the last physics substep ({layout.timestep:g} s before the joint values).",
        '    """',
        "",
        f"    dt: float  # {layout.dt:g} s of simulated time between `state` and `next_state` ({layout.frame_skip} physics steps)",
        "    batch_size: int  # N",
        "    time: np.ndarray  # (N,) simulated time since the episode began [s]",
        f"    qpos: np.ndarray  # (N, {layout.shapes['qpos'][0]}) every joint's position, in the order of `joints` below",
        f"    qvel: np.ndarray  # (N, {layout.shapes['qvel'][0]}) every joint's velocity, in the order of `joints` below",
        "    com: np.ndarray  # (N, 3) centre of mass of the whole model, world frame [m]",
        "    bodies: Bodies",
        "    joints: Joints",
    ]
    if layout.sites:
        lines.append("    sites: Sites")
    if layout.sensors:
        lines.append("    sensors: Sensors")
    if layout.extras:
        lines.append("    extras: Extras")
    lines += [
        "",
        "",
        "class Body:",
        "    pos: np.ndarray  # (N, 3) the body's frame origin, world frame [m]; not necessarily its geometry's centre or lowest point",
        "    quat: np.ndarray  # (N, 4) orientation of the body's frame in the world, (w, x, y, z)",
        "    com: np.ndarray  # (N, 3) the body's own centre of mass, world frame [m]",
        "    linvel: np.ndarray  # (N, 3) velocity of the body's frame origin, world frame [m/s]",
        "    angvel: np.ndarray  # (N, 3) angular velocity, world frame [rad/s]",
        "    cfrc_ext: np.ndarray  # (N, 6) external (contact) wrench on the body as MuJoCo's cfrc_ext: torque [N m]",
        "    #   about the centre of mass of the body's tree, then force [N], both in world axes",
        "",
        "",
        "class Bodies:",
    ]
    for body in layout.bodies:
        if body.index == 0:
            lines.append(f"    {body.name}: Body  # the fixed world (ground); its values never change")
            continue
        moved = f", joints {', '.join(body.joints)}" if body.joints else ", welded to its parent"
        lines.append(f"    {body.name}: Body  # mass {body.mass:.3g} kg, child of {body.parent}{moved}")
    for kind in kinds:
        npos, nvel = JOINT_WIDTHS[kind]
        position, velocity = JOINT_COMMENTS[kind]
        lines += [
            "",
            "",
            f"class {kind.capitalize()}Joint:",
            f"    qpos: np.ndarray  # {_shape(npos)} {position}",
            f"    qvel: np.ndarray  # {_shape(nvel)} {velocity}",
        ]
    lines += ["", "", "class Joints:"] + [_joint_line(j) for j in layout.joints]
    if not layout.joints:
        lines.append("    pass  # this model has no joints")
    if layout.sites:
        lines += [
            "",
            "",
            "class Site:",
            "    pos: np.ndarray  # (N, 3) position, world frame [m]",
            "",
            "",
            "class Sites:",
        ]
        lines += [f"    {s.name}: Site  # on body {s.body}" for s in layout.sites]
    if layout.sensors:
        lines += ["", "", "class Sensors:"]
        lines += [f"    {s.name}: np.ndarray  # {_shape(s.dim)} {s.kind} sensor" for s in layout.sensors]
    if layout.extras:
        lines += ["", "", "class Extras:"]
        lines += [f"    {name}: np.ndarray  # the same array as state.{path}" for name, path in layout.extras.items()]

    lines += ["", "", f"# action: np.ndarray of shape (N, {n_action}); column i drives:"]
    for index, (actuator, low, high) in enumerate(zip(layout.actuators, layout.action_low, layout.action_high)):
        lines.append(
            f"#   {index}: {actuator.name}, on {actuator.target}, gear {actuator.gear:g}, range [{low:g}, {high:g}]"
        )
    lines += _episodes_and_signature(facts, max_episode_steps)
    return "\n".join(lines) + "\n"


def _without_table(text: str, listed: tuple[str, ...] = ()) -> str:
    """Documentation prose without its table (and, where they were parsed, its numbered list items)."""
    kept = [line for line in text.splitlines() if not line.lstrip().startswith("|")]
    if listed:
        kept = [line for line in kept if not re.match(r"^\s*-\s*\d+\s*:", line)]
    return "\n".join(kept).strip()


def _bound(value: float) -> str:
    return f"{value + 0.0:.4g}" if abs(value) < 1e30 else ("inf" if value > 0 else "-inf")


def _observation_line(field: ObservationField) -> str:
    bounds = f"range [{_bound(field.low)}, {_bound(field.high)}]" + (f", unit {field.unit}" if field.unit else "")
    if field.name:
        return f"    {field.name}: np.ndarray  # (N,) obs[:, {field.index}]: {field.meaning}; {bounds}"
    return f"    # obs[:, {field.index}]: {bounds}"


def _observed_extra_line(layout: ObservationLayout, name: str, path: str) -> str:
    if name in layout.readings:  # a reading of the environment, which the observation leaves out
        return (
            f"    {name}: np.ndarray  # (N,) the environment's own `{layout.readings[name]}` after each reset and step, "
            "a number (true is 1.0, false 0.0); not in the observation"
        )
    return f"    {name}: np.ndarray  # the same array as state.{path}"


def describe_observation_layout(
    layout: ObservationLayout, max_episode_steps: int | None = None, facts: list[str] = ()
) -> str:
    """The State stub for an environment without a MuJoCo model: its observation, named from its documentation."""
    width = layout.shapes["obs"][0]
    timing = (
        [f"    dt: float  # {layout.dt:g} s of time between `state` and `next_state`"] if layout.dt is not None else []
    )
    time = "time since the episode began [s]" if layout.dt is not None else "steps since the episode began"
    lines = [
        "import numpy as np",
        "",
        "",
        "class State:",
        f'    """{layout.env_id}: N environments at one moment, as the policy observes them. Every array has N as its first axis.',
        "",
        "    This environment has no physics model to read, so its state is its observation.",
        '    """',
        "",
        *timing,
        "    batch_size: int  # N",
        f"    time: np.ndarray  # (N,) {time}",
        f"    obs: Observation  # the observation, an (N, {width}) array: obs[:, i] is column i; arithmetic and numpy work on it",
    ]
    if layout.extras:
        lines.append("    extras: Extras")
    if "description" in layout.docs:
        lines += [
            "",
            "",
            "# The environment, in its documentation's words:",
            *comment_lines(layout.docs["description"]),
        ]
    if "dynamics" in layout.docs:
        lines += ["#", "# How it moves:", *comment_lines(layout.docs["dynamics"])]
    lines += ["", "", "class Observation:"]
    if "observation" in layout.docs:  # its table is the fields below
        lines += comment_lines(_without_table(layout.docs["observation"]), "    ")
    lines += [_observation_line(f) for f in layout.fields]
    if not layout.documented:
        lines.append("    pass  # no column has a documented name: read them as obs[:, i]")
    if layout.extras:
        lines += ["", "", "class Extras:"]
        lines += [_observed_extra_line(layout, name, path) for name, path in layout.extras.items()]
    lines += ["", ""]
    if layout.discrete_actions:
        lines.append(
            f"# action: np.ndarray of shape (N,), integers: which of the {layout.discrete_actions} actions was taken"
        )
        lines += [f"#   {index}: {meaning}" for index, meaning in enumerate(layout.action_meanings)]
    else:
        lines.append(f"# action: np.ndarray of shape (N, {len(layout.action_low)}); column i:")
        meanings = layout.action_meanings or ("",) * len(layout.action_low)
        for index, (meaning, low, high) in enumerate(zip(meanings, layout.action_low, layout.action_high)):
            lines.append(f"#   {index}: {meaning + ', ' if meaning else ''}range [{_bound(low)}, {_bound(high)}]")
    if "action" in layout.docs:  # its table or list is the lines above
        lines += comment_lines(_without_table(layout.docs["action"], layout.action_meanings))
    lines += _episodes_and_signature(facts, max_episode_steps)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _episodes_and_signature(facts, max_episode_steps: int | None) -> list[str]:
    """The end of every description: when an episode ends and where it starts (task.episodes), else its
    length, then the function the designer writes (a reward; `contract.forms.with_signature` swaps in another
    form's)."""
    lines = ["", *facts] if facts else []
    if not facts and max_episode_steps:
        lines.append(f"# An episode lasts at most {max_episode_steps} steps; the environment may also end it early.")
    return lines + ["", "", *SIGNATURES["reward"]]


def describe_task(task: Task) -> str:
    """The stub for a task's environment, its extras included."""
    from autoreward.task.files import check_readings, episode_limit, make_env

    env = make_env(task)
    try:
        check_readings(task, env)  # a reading the environment does not have is one sentence naming the task file
        layout = state_layout(env, extras=task.extras)
        steps = episode_limit(task)
        facts = episode_facts(env, layout, task.env_kwargs, steps)
        if isinstance(layout, ObservationLayout):
            return describe_observation_layout(layout, steps, facts)
        return describe_layout(layout, steps, facts)
    finally:
        env.close()
