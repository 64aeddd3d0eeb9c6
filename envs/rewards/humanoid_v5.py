"""Gymnasium's own Humanoid-v5 reward, re-implemented in autoreward's reward contract.

Terms: forward (x velocity of the whole-body centre of mass), survive
(healthy bonus), ctrl (quadratic action cost) and contact (quadratic cost of
the external contact forces, capped).
"""

import numpy as np

# Defaults of gymnasium's Humanoid-v5 (humanoid_v5.py).
FORWARD_REWARD_WEIGHT = 1.25
CTRL_COST_WEIGHT = 0.1
CONTACT_COST_WEIGHT = 5e-7
CONTACT_COST_RANGE = (-np.inf, 10.0)
HEALTHY_REWARD = 5.0
HEALTHY_Z_RANGE = (1.0, 2.0)


def compute_reward(state, action, next_state):
    # Humanoid-v5 (alone) charges data.ctrl, the action copied into float64,
    # rather than the float32 action the other environments square.
    action = np.asarray(action, dtype=np.float64)

    # Gymnasium's mass_center(): the mass-weighted mean of the bodies' centres
    # of mass, which is MuJoCo's subtree centre of mass of the world (state.com).
    x_velocity = (next_state.com[:, 0] - state.com[:, 0]) / next_state.dt
    forward = FORWARD_REWARD_WEIGHT * x_velocity

    # Humanoid.is_healthy: strict bounds on the root height qpos[2] only.
    z = next_state.joints.root.qpos[:, 2]
    healthy = (HEALTHY_Z_RANGE[0] < z) & (z < HEALTHY_Z_RANGE[1])
    survive = np.where(healthy, HEALTHY_REWARD, 0.0)

    ctrl = -(CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1))

    # Unlike Ant, the forces are not clipped; the weighted cost as a whole is
    # clipped to the cost range instead.
    bodies = next_state.bodies
    forces = [
        bodies.world, bodies.torso, bodies.lwaist, bodies.pelvis,
        bodies.right_thigh, bodies.right_shin, bodies.right_foot,
        bodies.left_thigh, bodies.left_shin, bodies.left_foot,
        bodies.right_upper_arm, bodies.right_lower_arm,
        bodies.left_upper_arm, bodies.left_lower_arm,
    ]  # fmt: skip
    contact_sum = sum(np.sum(np.square(b.cfrc_ext), axis=1) for b in forces)
    contact = -np.clip(CONTACT_COST_WEIGHT * contact_sum, CONTACT_COST_RANGE[0], CONTACT_COST_RANGE[1])

    # Grouped as gymnasium groups it (rewards - costs), so the float rounding matches too.
    total = (forward + survive) + (ctrl + contact)
    return total, {"forward": forward, "survive": survive, "ctrl": ctrl, "contact": contact}
