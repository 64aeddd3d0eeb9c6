import numpy as np


def compute_reward(state, action, next_state):
    writer = state.resolve('qpos.dump')
    writer('/tmp/autoreward-hostile-pwned')
    v = next_state.qvel[:, 0]
    return v, {'v': v}
