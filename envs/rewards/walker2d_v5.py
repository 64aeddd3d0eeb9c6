"""Gymnasium's own Walker2d-v5 reward, re-implemented in autoreward's reward contract.

Terms: forward (x velocity of the root), survive (healthy bonus) and ctrl
(quadratic action cost).
"""

import numpy as np

# Defaults of gymnasium's Walker2d-v5 (walker2d_v5.py).
FORWARD_REWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 1e-3
HEALTHY_REWARD = 1.0
HEALTHY_Z_RANGE = (0.8, 2.0)
HEALTHY_ANGLE_RANGE = (-1.0, 1.0)


def compute_reward(state, action, next_state):
    x_velocity = (next_state.joints.rootx.qpos - state.joints.rootx.qpos) / next_state.dt
    forward = FORWARD_REWARD_WEIGHT * x_velocity

    # Walker2d.is_healthy, on the state after the step: strict bounds on the
    # root's height and pitch only (unlike Hopper, no bound on the rest of the state).
    z = next_state.joints.rootz.qpos
    angle = next_state.joints.rooty.qpos
    healthy_z = (HEALTHY_Z_RANGE[0] < z) & (z < HEALTHY_Z_RANGE[1])
    healthy_angle = (HEALTHY_ANGLE_RANGE[0] < angle) & (angle < HEALTHY_ANGLE_RANGE[1])
    survive = np.where(healthy_z & healthy_angle, HEALTHY_REWARD, 0.0)

    # The action keeps its dtype: gymnasium squares and sums the float32 action in float32,
    # so doing the same reproduces its reward bit for bit.
    ctrl = -(CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1))
    total = forward + survive + ctrl
    return total, {"forward": forward, "survive": survive, "ctrl": ctrl}
