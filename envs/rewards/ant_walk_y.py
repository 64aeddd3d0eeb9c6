"""A hand-written reward for walking the ant along +y.

Gymnasium's Ant reward with the forward term measured along y instead of x.
"""

import numpy as np

HEALTHY_BONUS = 1.0
CTRL_WEIGHT = 0.5
CONTACT_WEIGHT = 5e-4


def compute_reward(state, action, next_state):
    y_velocity = (next_state.bodies.torso.pos[:, 1] - state.bodies.torso.pos[:, 1]) / state.dt
    height = next_state.bodies.torso.pos[:, 2]
    healthy = HEALTHY_BONUS * ((height >= 0.2) & (height <= 1.0))
    ctrl = -CTRL_WEIGHT * np.sum(np.square(action), axis=1)
    b = next_state.bodies
    contact = np.zeros(state.batch_size)
    for body in (b.torso, b.front_left_leg, b.aux_1, b.front_right_leg, b.aux_2,
                 b.back_leg, b.aux_3, b.right_back_leg, b.aux_4):
        wrench = np.clip(body.cfrc_ext, -1.0, 1.0)
        contact -= CONTACT_WEIGHT * np.sum(np.square(wrench), axis=1)
    total = y_velocity + healthy + ctrl + contact
    return total, {"sideways": y_velocity, "healthy": healthy, "ctrl": ctrl, "contact": contact}
