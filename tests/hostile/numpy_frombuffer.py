import numpy as np


def compute_reward(state, action, next_state):
    # An array over the State's memory read as another dtype, and writable where the buffer is.
    raw = np.frombuffer(next_state.qpos, dtype=np.int64)
    v = next_state.qvel[:, 0]
    return v, {'v': v}
