import numpy as np


def compute_reward(state, action, next_state):
    v = np.log(next_state.qvel[:, 0] * 0.0 - 1.0)
    return v, {'v': v}
