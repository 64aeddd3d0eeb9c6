"""The latent form for bench/forms.py's two MountainCar tasks (mountain_car_sparse, mountain_car_final_position):
each step's gain in the car's mechanical energy, where the car is on the track, and its effort, as terms whose
weights training fits to each episode's task score.

Written by hand (no LLM), from the same knowledge as mountain_car_reward.py. Its flag bonus is not a term here:
the check refuses a latent term that is the same on all its states, and none of the check's states is at the
flag, so the car's position stands for it.
"""

import numpy as np

GRAVITY = 0.0025  # the environment's pull along the slope of the hill, whose height is sin(3 x) / 3


def energy(s):
    return 0.5 * s.obs.velocity.astype(np.float64) ** 2 + GRAVITY / 3.0 * np.sin(3.0 * s.obs.position)


def compute_latent(state, action, next_state):
    gain = 1000.0 * (energy(next_state) - energy(state))
    position = next_state.obs.position.astype(np.float64)
    effort = action[:, 0].astype(np.float64) ** 2
    return {"energy_gain": gain, "position": position, "effort": effort}
