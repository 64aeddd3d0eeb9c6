import numpy as np


def compute_reward(state, action, next_state):
    v = next_state.qvel[:, 0]
    return v, {'v': v, 'boom': v / 0.0 + 1.0}
