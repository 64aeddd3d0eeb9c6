import numpy as np


def compute_reward(state, action, next_state):
    # The array interface: the buffer's address, from which an array of any dtype can be rebuilt.
    address = next_state.qpos.__array_interface__['data'][0]
    v = next_state.qvel[:, 0]
    return v, {'v': v}
