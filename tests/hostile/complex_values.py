import numpy as np


def compute_reward(state, action, next_state):
    v = np.exp(1j * next_state.qvel[:, 0])
    return v, {'v': v}
