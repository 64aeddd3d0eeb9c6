import numpy as np


def compute_reward(state, action, next_state):
    class Escape:
        pass
    v = next_state.qvel[:, 0]
    return v, {'v': v}
