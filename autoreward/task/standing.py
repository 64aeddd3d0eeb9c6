"""Where a robot's weight rests when it stands, measured on its MuJoCo model, for the designer.

A reward about feet needs facts a model states nowhere: Walker2d's `bodies.foot.pos` is the foot's frame
origin, which stands 4 cm below the ground while the foot's centre of mass is 6 cm above it, and each
foot carries half of 232 N. They are measured, the same way for every model: the start pose without
reset noise (`init_qpos`, `init_qvel`), then zero action until the normal forces of the contacts with the
ground carry the whole weight steadily (`STEADY_STEPS` environment steps in a row within
`STEADY_TOLERANCE` of it), for at most `SETTLE_SECONDS`. The ground is every geom of the world body and
of any body fixed to it; the weight is that of the bodies that move. A model that does not come to rest
on its feet (Humanoid crumples at zero action) is told which bodies touched the ground first; one where
nothing touches it, that nothing does.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

SETTLE_SECONDS = 2.0  # of simulated time at zero action, at most
STEADY_STEPS = 3  # environment steps in a row whose ground load is within STEADY_TOLERANCE of the weight
STEADY_TOLERANCE = 0.05
MEASUREMENT_VERSION = 4  # in the cache key: raise it when the constants above or the measurement change


def measure_standing(
    model: mujoco.MjModel, qpos: np.ndarray, qvel: np.ndarray, frame_skip: int, names: list[str], roots: list[int]
) -> dict:
    """Zero action from the pose (qpos, qvel): the bodies that touch the ground first, and the moment the ground
    carries the weight steadily, with the heights of `roots` and of the bodies touching it, and their loads.

    `names` are the State's names of the model's bodies, by index. A body's load is the normal force of its
    ground contacts, averaged over the physics steps of one environment step. Without gravity nothing is run.
    """
    moving = model.body_weldid != 0  # a body fixed to the world is ground: the world carries its weight
    mass = float(model.body_mass[moving].sum())
    weight = mass * float(np.linalg.norm(model.opt.gravity))
    all_move = bool(model.body_mass[~moving].sum() == 0)
    found = {
        "mass": mass,
        "all_move": all_move,
        "weight": weight,
        "seconds": SETTLE_SECONDS,
        "first": None,
        "rest": None,
    }
    if weight == 0:
        return found
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:] = qpos, qvel
    mujoco.mj_forward(model, data)
    step_time = model.opt.timestep * frame_skip
    steady = 0
    for step in range(1, math.ceil(SETTLE_SECONDS / step_time) + 1):
        loads = np.zeros(model.nbody)
        touching: set[int] = set()
        for _ in range(frame_skip):
            mujoco.mj_step(model, data)
            for body, force in _ground_contacts(model, data):
                loads[body] += force / frame_skip
                touching.add(body)
        if not touching:
            steady = 0
            continue
        steady = steady + 1 if abs(loads.sum() - weight) <= STEADY_TOLERANCE * weight else 0
        mujoco.mj_rnePostConstraint(model, data)  # cfrc_ext, as the State holds it after a step
        moment = {
            "after": step * step_time,
            "bodies": [
                {
                    "name": names[index],
                    "pos_z": float(data.xpos[index, 2]),
                    "com_z": float(data.xipos[index, 2]),
                    "root": index in roots,
                    "ground": index in touching,
                    "load": float(loads[index]),
                    "cfrc_ext_z": float(data.cfrc_ext[index, 5]),
                }
                for index in [*roots, *sorted(touching - set(roots))]
            ],
        }
        found["first"] = found["first"] or moment
        if steady == STEADY_STEPS:
            found["rest"] = moment
            break
    return found


def _ground_contacts(model: mujoco.MjModel, data: mujoco.MjData):
    """(moving body, normal force [N]) for each active contact between it and the ground."""
    force = np.zeros(6)
    fixed = model.body_weldid == 0  # the world body and the bodies welded to it
    for index in range(data.ncon):
        contact = data.contact[index]
        if contact.efc_address < 0:  # one the solver leaves out (past its gap): it pushes with no force
            continue
        first, second = model.geom_bodyid[contact.geom1], model.geom_bodyid[contact.geom2]
        if fixed[first] == fixed[second]:
            continue
        mujoco.mj_contactForce(model, data, index, force)  # force[0] is along the contact normal
        yield (second if fixed[first] else first), float(force[0])


def standing_lines(found: dict) -> list[str]:
    """Comment lines for the State stub: the measurement of `measure_standing`, in the State's field names.

    It stands when it comes to rest with no root body on the ground; else it is told what touched the ground
    first, and where it came to rest. Bodies alike in every figure shown share a line (Ant's four feet).
    """
    mass = f"total mass {found['mass']:.3g} kg" + ("" if found["all_move"] else " (of the bodies that move)")
    if not found["weight"]:
        return [f"# Gravity is zero here, so nothing carries a weight; {mass}."]
    if found["first"] is None:
        return [f"# Nothing touches the ground in {found['seconds']:g} s of zero action from the start pose; {mass}."]
    mass += f", weight {found['weight']:.3g} N"
    rest, first = found["rest"], found["first"]
    if rest is not None and not any(b["root"] and b["ground"] for b in rest["bodies"]):
        grounded = [b for b in rest["bodies"] if b["ground"]]
        read = (  # on flat ground the State reads each load as the vertical contact force
            ", as `bodies.<name>.cfrc_ext[:, 5]` reads it"
            if all(abs(b["cfrc_ext_z"] - b["load"]) <= STEADY_TOLERANCE * max(b["load"], 1e-9) for b in grounded)
            else ""
        )
        return [
            f"# Standing (the start pose without noise, then {rest['after']:.2g} s of zero action, until the ground "
            f"carries the weight steadily): {mass}.",
            *(f"#   {names}: {text}" for names, text in _grouped(rest["bodies"], loads=True)),
            f"#   Nothing else touches the ground; a load is the normal force of a body's ground contacts{read}.",
        ]
    if rest is None:
        settled = f"in {found['seconds']:g} s the ground never carries its weight steadily"
    else:  # it fell onto its root body
        lying = ", ".join(f"bodies.{b['name']}" for b in rest["bodies"] if b["ground"])
        settled = f"it comes to rest after {rest['after']:.2g} s on {lying}"
    touched = "; ".join(f"{names}: {text}" for names, text in _grouped(b for b in first["bodies"] if b["ground"]))
    return [
        f"# At zero action from the start pose (without noise) it does not stand: {settled}; {mass}.",
        f"#   First to touch the ground, after {first['after']:.2g} s: {touched}.",
    ]


def _grouped(bodies, loads: bool = False) -> list[tuple[str, str]]:
    """(names, what they share) for the bodies, those alike in every figure shown on one line."""
    groups: dict[str, list[str]] = {}
    for body in bodies:
        text = _heights(body)
        if loads and body["ground"]:
            text = f"on the ground, carries about {body['load']:.3g} N; {text}"
        groups.setdefault(text, []).append(f"bodies.{body['name']}")
    return [(", ".join(names), ("each " if len(names) > 1 else "") + text) for text, names in groups.items()]


def _heights(body: dict) -> str:
    """The body's `pos` and `com` heights, and for a body on the ground, how far apart they are."""
    text = f"pos z {body['pos_z']:.3f} m, com z {body['com_z']:.3f} m"
    if body["ground"]:
        gap = body["com_z"] - body["pos_z"]
        text += f" ({abs(gap):.3f} {'above' if gap >= 0 else 'below'} pos)"
    return text
