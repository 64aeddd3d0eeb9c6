import numpy as np


def compute_reward(state, action, next_state):
    base = type(()).mro()[-1]
    v = next_state.qvel[:, 0]
    return v, {'v': v}
