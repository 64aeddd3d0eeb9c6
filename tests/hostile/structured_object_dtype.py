import numpy as np


def compute_reward(state, action, next_state):
    # An object dtype hidden in a structured one: a field of pointers to Python objects.
    records = np.zeros(len(action), dtype=[('value', 'f8'), ('pointer', 'O')])
    v = next_state.qvel[:, 0]
    return v, {'v': v}
