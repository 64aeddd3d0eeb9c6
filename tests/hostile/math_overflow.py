import math

import numpy as np


def compute_reward(state, action, next_state):
    scale = math.exp(1000)
    v = next_state.qvel[:, 0]
    return v, {'v': v}
