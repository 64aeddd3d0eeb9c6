"""A hand-written reward for walking the walker at a steady 1.5 m/s.

A bell-shaped reward around the target speed, a bonus for staying upright,
and a small control cost.
"""

import numpy as np

TARGET_SPEED = 1.5
SPEED_TEMPERATURE = 0.5
HEALTHY_BONUS = 1.0
CTRL_WEIGHT = 1e-3


def compute_reward(state, action, next_state):
    x_velocity = (next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt
    speed = np.exp(-np.square(x_velocity - TARGET_SPEED) / SPEED_TEMPERATURE)
    height = next_state.joints.rootz.qpos
    angle = next_state.joints.rooty.qpos
    upright = HEALTHY_BONUS * ((height > 0.8) & (height < 2.0) & (np.abs(angle) < 1.0))
    ctrl = -CTRL_WEIGHT * np.sum(np.square(action), axis=1)
    return speed + upright + ctrl, {"speed": speed, "upright": upright, "ctrl": ctrl}
