import numpy as np


def compute_reward(state, action, next_state):
    # The State's bytes read as another dtype (numpy itself refuses object, not int64 or a structured one).
    bits = next_state.qpos.view(np.int64)
    v = next_state.qvel[:, 0]
    return v, {'v': v}
