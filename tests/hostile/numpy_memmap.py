import numpy as np


def compute_reward(state, action, next_state):
    scratch = np.memmap('/tmp/autoreward-hostile-pwned', mode='w+', shape=(16,))
    v = next_state.qvel[:, 0]
    return v, {'v': v}
