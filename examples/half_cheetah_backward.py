"""An example reward program, written as a reward designer would: run the half cheetah backwards.

Each term is squashed to a known range with a named temperature, so no term
can swamp the others.
"""

import numpy as np

SPEED_TEMPERATURE = 4.0  # m/s: speeds well past this earn little more
UPRIGHT_TEMPERATURE = 0.5  # rad
CTRL_WEIGHT = 0.05


def compute_reward(state, action, next_state):
    x_velocity = (next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt
    backward = np.tanh(-x_velocity / SPEED_TEMPERATURE) * 2.0
    pitch = next_state.joints.rooty.qpos
    upright = 0.2 * np.exp(-np.square(pitch) / UPRIGHT_TEMPERATURE)
    effort = -CTRL_WEIGHT * np.sum(np.square(action), axis=1)
    total = backward + upright + effort
    return total, {"backward": backward, "upright": upright, "effort": effort}
