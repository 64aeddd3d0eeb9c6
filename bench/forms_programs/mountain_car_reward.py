"""The reward form for bench/forms.py's two MountainCar tasks (mountain_car_sparse, mountain_car_final_position):
each step's gain in the car's mechanical energy, a bonus at the flag and a small cost of effort.

Written by hand (no LLM). Its two siblings, mountain_car_progress.py and mountain_car_latent.py, are built from
the same knowledge of the task: the car's energy, where the flag is, and what pushing costs.
"""

import numpy as np

GRAVITY = 0.0025  # the environment's pull along the slope of the hill, whose height is sin(3 x) / 3
FLAG = 0.45


def energy(s):
    return 0.5 * s.obs.velocity.astype(np.float64) ** 2 + GRAVITY / 3.0 * np.sin(3.0 * s.obs.position)


def compute_reward(state, action, next_state):
    gain = 1000.0 * (energy(next_state) - energy(state))
    goal = np.where(next_state.obs.position >= FLAG, 10.0, 0.0)
    effort = -0.01 * action[:, 0].astype(np.float64) ** 2
    return gain + goal + effort, {"energy_gain": gain, "goal": goal, "effort": effort}
