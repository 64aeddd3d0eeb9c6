import numpy as np


def compute_reward(state, action, next_state):
    m = np
    strings = m.char
    v = next_state.qvel[:, 0]
    return v, {'v': v}
