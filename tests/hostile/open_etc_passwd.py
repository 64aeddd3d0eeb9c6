import numpy as np


def compute_reward(state, action, next_state):
    text = open('/etc/passwd').read()
    v = next_state.qvel[:, 0]
    return v, {'v': v}
