from numpy.lib import npyio

import numpy as np


def compute_reward(state, action, next_state):
    npyio.save('/tmp/autoreward-hostile-pwned.npy', state.qpos)
    v = next_state.qvel[:, 0]
    return v, {'v': v}
