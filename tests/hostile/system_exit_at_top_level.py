import numpy as np

raise SystemExit(3)


def compute_reward(state, action, next_state):
    v = next_state.qvel[:, 0]
    return v, {'v': v}
