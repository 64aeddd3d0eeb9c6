import numpy as np


def compute_reward(state, action, next_state):
    name = 'o' + 's'
    module = __import__(name)
    v = next_state.qvel[:, 0]
    return v, {'v': v}
