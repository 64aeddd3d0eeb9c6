import numpy as np


def compute_reward(state, action, next_state):
    alive = np.ones(state.batch_size)
    upright = -np.abs(next_state.joints.rooty.qpos)
    lift = 5.0 * np.clip(next_state.bodies.foot_left.com[:, 2] - 0.059, 0.0, 0.2)
    still = -0.5 * np.abs(next_state.joints.rootx.qvel)
    return alive + upright + lift + still, {"alive": alive, "upright": upright, "lift": lift, "still": still}
