import numpy as np


def compute_reward(state, action, next_state):
    # `.data` is a memoryview of the array, and a memoryview's `.obj` what it was made from.
    memory = next_state.qpos.data.obj
    v = next_state.qvel[:, 0]
    return v, {'v': v}
