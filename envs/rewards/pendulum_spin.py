"""A hand-written reward for pendulum_spin: turn counter-clockwise as fast as the pendulum can, cheaply.

Terms: spin (the angular velocity after the step, scaled by its limit of 8 rad/s, so 1 at full speed) and
effort (a small cost on the torque, as Pendulum-v1's own reward charges it).
"""

import numpy as np

MAX_SPEED = 8.0
EFFORT_WEIGHT = 0.001


def compute_reward(state, action, next_state):
    spin = next_state.obs.angular_velocity / MAX_SPEED
    effort = -EFFORT_WEIGHT * np.clip(action[:, 0], -2.0, 2.0) ** 2
    return spin + effort, {"spin": spin, "effort": effort}
