"""A hand-written reward for standing on the right leg with the walker.

Keeps it alive and upright, pays for the left foot's centre of mass above
its height at rest (0.059 m, as `autoreward describe` prints it) and for
the right foot carrying the weight with the left foot carrying nothing,
and charges for moving along x and for effort.
"""

import numpy as np

REST_HEIGHT = 0.059  # the foot's com z standing on both feet [m]
LIFT_CAP = 0.15  # lifting higher than this earns nothing more [m]
WEIGHT = 232.0  # the walker's weight [N]


def compute_reward(state, action, next_state):
    bodies = next_state.bodies
    alive = np.ones(state.batch_size)
    upright = -np.abs(next_state.joints.rooty.qpos)
    lift = 5.0 * np.clip(bodies.foot_left.com[:, 2] - REST_HEIGHT, 0.0, LIFT_CAP)
    on_one_leg = 1.0 * (bodies.foot_left.cfrc_ext[:, 5] < 1.0) * (bodies.foot.cfrc_ext[:, 5] > 0.5 * WEIGHT)
    still = -0.5 * np.abs(next_state.joints.rootx.qvel)
    ctrl = -1e-3 * np.sum(np.square(action), axis=1)
    total = alive + upright + lift + on_one_leg + still + ctrl
    return total, {"alive": alive, "upright": upright, "lift": lift, "on_one_leg": on_one_leg, "still": still, "ctrl": ctrl}
