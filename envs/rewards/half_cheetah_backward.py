"""A hand-written reward for running the half cheetah backwards (towards -x).

Gymnasium's forward reward with its sign flipped, and the same control cost.
"""

import numpy as np

BACKWARD_WEIGHT = 1.0
CTRL_WEIGHT = 0.1


def compute_reward(state, action, next_state):
    x_velocity = (next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt
    backward = -BACKWARD_WEIGHT * x_velocity
    ctrl = -CTRL_WEIGHT * np.sum(np.square(action), axis=1)
    return backward + ctrl, {"backward": backward, "ctrl": ctrl}
