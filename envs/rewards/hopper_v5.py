"""Gymnasium's own Hopper-v5 reward, re-implemented in autoreward's reward contract.

Terms: forward (x velocity of the root), survive (healthy bonus) and ctrl
(quadratic action cost).
"""

import numpy as np

# Defaults of gymnasium's Hopper-v5 (hopper_v5.py).
FORWARD_REWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 1e-3
HEALTHY_REWARD = 1.0
HEALTHY_STATE_RANGE = (-100.0, 100.0)
HEALTHY_Z_RANGE = (0.7, np.inf)
HEALTHY_ANGLE_RANGE = (-0.2, 0.2)


def compute_reward(state, action, next_state):
    x_velocity = (next_state.joints.rootx.qpos - state.joints.rootx.qpos) / next_state.dt
    forward = FORWARD_REWARD_WEIGHT * x_velocity

    # Hopper.is_healthy, on the state after the step. All bounds are strict.
    # The state check covers state_vector()[2:], i.e. qpos from index 2 (the
    # torso angle and the leg joints: x and z are left out) and all of qvel.
    z = next_state.joints.rootz.qpos
    angle = next_state.joints.rooty.qpos
    rest = np.concatenate([next_state.qpos[:, 2:], next_state.qvel], axis=1)
    low, high = HEALTHY_STATE_RANGE
    healthy_state = np.all((low < rest) & (rest < high), axis=1)
    healthy_z = (HEALTHY_Z_RANGE[0] < z) & (z < HEALTHY_Z_RANGE[1])
    healthy_angle = (HEALTHY_ANGLE_RANGE[0] < angle) & (angle < HEALTHY_ANGLE_RANGE[1])
    healthy = healthy_state & healthy_z & healthy_angle
    survive = np.where(healthy, HEALTHY_REWARD, 0.0)

    # The action keeps its dtype: gymnasium squares and sums the float32 action in float32,
    # so doing the same reproduces its reward bit for bit.
    ctrl = -(CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1))
    total = forward + survive + ctrl
    return total, {"forward": forward, "survive": survive, "ctrl": ctrl}
