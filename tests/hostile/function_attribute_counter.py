import numpy as np


def compute_reward(state, action, next_state):
    # State kept between calls in an attribute of the function itself.
    compute_reward.calls = 1
    v = next_state.qvel[:, 0]
    return v, {'v': v}
