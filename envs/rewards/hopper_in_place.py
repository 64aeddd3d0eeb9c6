"""A hand-written reward for hopping on the spot with the hopper.

Rewards upward speed of the torso (to leave the ground), pulls the hopper
back towards where it started, keeps it alive, and charges for effort.
"""

import numpy as np

HEALTHY_BONUS = 1.0
JUMP_WEIGHT = 1.0
DRIFT_WEIGHT = 2.0
CTRL_WEIGHT = 1e-3


def compute_reward(state, action, next_state):
    z_velocity = (next_state.joints.rootz.qpos - state.joints.rootz.qpos) / state.dt
    jump = JUMP_WEIGHT * np.maximum(z_velocity, 0.0)
    drift = -DRIFT_WEIGHT * np.abs(next_state.joints.rootx.qpos)
    # Gymnasium ends the episode when the hopper falls; staying up is worth a constant bonus.
    alive = np.full(state.batch_size, HEALTHY_BONUS)
    ctrl = -CTRL_WEIGHT * np.sum(np.square(action), axis=1)
    total = jump + drift + alive + ctrl
    return total, {"jump": jump, "drift": drift, "alive": alive, "ctrl": ctrl}
