import numpy as np


def compute_reward(state, action, next_state):
    # The bit generator's ctypes interface: the address of its state and C function pointers.
    address = np.random.default_rng(0).bit_generator.ctypes.state_address
    v = next_state.qvel[:, 0]
    return v, {'v': v}
