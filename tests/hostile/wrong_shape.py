import numpy as np


def compute_reward(state, action, next_state):
    v = next_state.qpos
    return v, {'v': v[:, 0]}
