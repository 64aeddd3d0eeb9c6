import numpy as np


def compute_reward(state, action, next_state):
    v = np.random.rand(state.batch_size)
    return v, {'v': v}
