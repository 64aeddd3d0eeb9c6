import numpy as np


def compute_reward(state, action, next_state):
    base = np.float64.mro()[-1]
    v = next_state.qvel[:, 0]
    return v, {'v': v}
