"""Gymnasium's own Ant-v5 reward, re-implemented in autoreward's reward contract.

Terms: forward (x velocity of the torso body), survive (healthy bonus), ctrl
(quadratic action cost) and contact (quadratic cost of clipped external
contact forces).
"""

import numpy as np

# Defaults of gymnasium's Ant-v5 (ant_v5.py).
FORWARD_REWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 0.5
CONTACT_COST_WEIGHT = 5e-4
CONTACT_FORCE_RANGE = (-1.0, 1.0)
HEALTHY_REWARD = 1.0
HEALTHY_Z_RANGE = (0.2, 1.0)


def compute_reward(state, action, next_state):
    # Ant-v5 measures the torso body's frame (main_body=1, data.xpos), not qpos.
    x_velocity = (next_state.bodies.torso.pos[:, 0] - state.bodies.torso.pos[:, 0]) / next_state.dt
    forward = FORWARD_REWARD_WEIGHT * x_velocity

    # Ant.is_healthy: the whole state vector is finite and the torso height
    # (qpos[2]) lies in the range, bounds included (Ant uses <=, not <).
    finite = np.all(np.isfinite(next_state.qpos), axis=1) & np.all(np.isfinite(next_state.qvel), axis=1)
    z = next_state.joints.root.qpos[:, 2]
    healthy = finite & (HEALTHY_Z_RANGE[0] <= z) & (z <= HEALTHY_Z_RANGE[1])
    survive = np.where(healthy, HEALTHY_REWARD, 0.0)

    # The action keeps its dtype: gymnasium squares and sums the float32 action in float32,
    # so doing the same reproduces its reward bit for bit.
    ctrl = -(CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1))

    # Gymnasium clips every entry of data.cfrc_ext (all bodies, the world
    # included) to the force range and then sums the squares.
    bodies = next_state.bodies
    forces = [
        bodies.world, bodies.torso,
        bodies.front_left_leg, bodies.aux_1, bodies.body4,
        bodies.front_right_leg, bodies.aux_2, bodies.body7,
        bodies.back_leg, bodies.aux_3, bodies.body10,
        bodies.right_back_leg, bodies.aux_4, bodies.body13,
    ]  # fmt: skip
    low, high = CONTACT_FORCE_RANGE
    contact_sum = sum(np.sum(np.square(np.clip(b.cfrc_ext, low, high)), axis=1) for b in forces)
    contact = -CONTACT_COST_WEIGHT * contact_sum

    # Grouped as gymnasium groups it (rewards - costs), so the float rounding matches too.
    total = (forward + survive) + (ctrl + contact)
    return total, {"forward": forward, "survive": survive, "ctrl": ctrl, "contact": contact}
