import multiprocessing

import numpy as np


def compute_reward(state, action, next_state):
    while True:
        multiprocessing.Process(target=print).start()
