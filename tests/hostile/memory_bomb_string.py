import numpy as np


def compute_reward(state, action, next_state):
    text = 'x' * 10**11
    v = next_state.qvel[:, 0]
    return v, {'v': v}
