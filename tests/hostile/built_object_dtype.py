import numpy as np


def compute_reward(state, action, next_state):
    # The object dtype spelled at run time, where the static rules cannot read it.
    pointers = np.zeros(len(action), dtype='o'.upper())
    v = next_state.qvel[:, 0]
    return v, {'v': v}
