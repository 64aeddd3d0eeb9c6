"""The progress form for bench/forms.py's two MountainCar tasks (mountain_car_sparse, mountain_car_final_position):
the share of the energy the climb to the flag needs that the car has, and how far along the track to the flag
it is, each in [0, 1].

Training pays the task's sparse reward and a count bonus over these two, binned; it never pays them
themselves. Written by hand (no LLM), from the same knowledge as mountain_car_reward.py; effort has no place
in a progress, so it is left out.
"""

import numpy as np

GRAVITY = 0.0025  # the environment's pull along the slope of the hill, whose height is sin(3 x) / 3
FLAG = 0.45
LEFT_END = -1.2
LOWEST = -GRAVITY / 3.0  # the energy at rest in the bottom of the valley
NEEDED = GRAVITY / 3.0 * np.sin(3.0 * FLAG)  # ...and at rest at the flag


def energy(s):
    return 0.5 * s.obs.velocity.astype(np.float64) ** 2 + GRAVITY / 3.0 * np.sin(3.0 * s.obs.position)


def compute_progress(state, action, next_state):
    energy_share = np.clip((energy(next_state) - LOWEST) / (NEEDED - LOWEST), 0.0, 1.0)
    along = np.clip((next_state.obs.position.astype(np.float64) - LEFT_END) / (FLAG - LEFT_END), 0.0, 1.0)
    return {"energy": energy_share, "position": along}
