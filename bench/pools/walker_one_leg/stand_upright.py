import numpy as np


def compute_reward(state, action, next_state):
    alive = np.ones(state.batch_size)
    upright = -np.abs(next_state.joints.rooty.qpos)
    still = -0.5 * np.abs(next_state.joints.rootx.qvel)
    return alive + upright + still, {"alive": alive, "upright": upright, "still": still}
