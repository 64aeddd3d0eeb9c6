import numpy as np


def compute_reward(state, action, next_state):
    libc = np.ctypeslib.load_library('libc.so.6', '/lib/x86_64-linux-gnu')
    v = next_state.qvel[:, 0]
    return v, {'v': v}
