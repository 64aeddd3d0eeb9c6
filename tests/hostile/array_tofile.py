import numpy as np


def compute_reward(state, action, next_state):
    state.qpos.tofile('/tmp/autoreward-hostile-pwned')
    v = next_state.qvel[:, 0]
    return v, {'v': v}
