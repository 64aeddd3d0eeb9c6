import numpy as np


def compute_reward(state, action, next_state):
    # An array's pickle protocol: the function that rebuilds it, and its raw bytes.
    rebuild, arguments, *rest = np.asarray(next_state.qpos).__reduce__()
    v = next_state.qvel[:, 0]
    return v, {'v': v}
