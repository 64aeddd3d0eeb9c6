import numpy as np


def compute_reward(state, action, next_state):
    v = np.ones((2**40,))
    return v, {'v': v}
