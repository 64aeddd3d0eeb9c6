import numpy as np


def deeper(n):
    return deeper(n + 1)


def compute_reward(state, action, next_state):
    return deeper(0)
