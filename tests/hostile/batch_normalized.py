import numpy as np


def compute_reward(state, action, next_state):
    v = next_state.qvel[:, 0] / (np.abs(next_state.qvel[:, 0]).max() + 1.0)
    return v, {'v': v}
