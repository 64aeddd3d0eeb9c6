import numpy as np


def compute_reward(state, action, next_state):
    alive = np.ones(state.batch_size)
    lift = 3.0 * np.clip(next_state.bodies.foot_left.pos[:, 2], 0.0, 0.3)
    still = -0.5 * np.abs(next_state.joints.rootx.qvel)
    return alive + lift + still, {"alive": alive, "lift": lift, "still": still}
