import numpy as np


def compute_reward(state, action, next_state):
    bodies = next_state.bodies
    alive = np.ones(state.batch_size)
    left_free = 1.0 * (bodies.foot_left.cfrc_ext[:, 5] < 1.0)
    right_loaded = np.clip(bodies.foot.cfrc_ext[:, 5] / 232.0, 0.0, 1.0)
    one_leg = 2.0 * left_free * right_loaded
    still = -0.5 * np.abs(next_state.joints.rootx.qvel)
    return alive + one_leg + still, {"alive": alive, "one_leg": one_leg, "still": still}
