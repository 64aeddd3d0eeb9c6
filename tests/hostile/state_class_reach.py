import numpy as np


def compute_reward(state, action, next_state):
    # Reading the State's classes, without setting anything: `cached_property.func` and `property.getter`
    # are public doors from a class to its functions.
    getter = state.walkable[1].pos.func
    v = next_state.qvel[:, 0]
    return v, {'v': v}
