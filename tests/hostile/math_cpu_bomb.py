import math

import numpy as np


def compute_reward(state, action, next_state):
    digits = math.factorial(10**8)
    v = next_state.qvel[:, 0]
    return v, {'v': v}
