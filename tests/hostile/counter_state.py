import numpy as np

CALLS = [0]


def compute_reward(state, action, next_state):
    CALLS[0] += 1
    v = next_state.qvel[:, 0] + CALLS[0]
    return v, {'v': v}
