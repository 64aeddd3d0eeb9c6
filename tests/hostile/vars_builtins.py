import numpy as np


def compute_reward(state, action, next_state):
    opener = vars()['__builtins__']
    v = next_state.qvel[:, 0]
    return v, {'v': v}
