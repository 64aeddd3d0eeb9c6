import numpy as np


def compute_reward(state, action, next_state):
    outer = compute_reward.__globals__
    v = next_state.qvel[:, 0]
    return v, {'v': v}
