import numpy as np


def compute_reward(state, action, next_state):
    m = np
    core = m.ma.core
    v = next_state.qvel[:, 0]
    return v, {'v': v}
