"""Gymnasium's own InvertedDoublePendulum-v5 reward, re-implemented in autoreward's reward contract.

Terms: survive (alive bonus while the tip is above y = 1), distance_penalty
(tip away from x = 0, y = 2) and velocity_penalty (angular velocities of the
two hinges). The action does not enter this reward.
"""

import numpy as np

# Defaults of gymnasium's InvertedDoublePendulum-v5 (inverted_double_pendulum_v5.py).
HEALTHY_REWARD = 10.0
# Fixed coefficients written into gymnasium's _get_rew.
DIST_X_WEIGHT = 0.01
TARGET_HEIGHT = 2.0
HINGE_VEL_WEIGHT = 0.001
HINGE2_VEL_WEIGHT = 0.005
# The episode terminates, and the bonus is lost, once the tip is at or below this height.
TERMINATE_HEIGHT = 1.0


def compute_reward(state, action, next_state):
    # Gymnasium reads site_xpos[0], the "tip" site, as (x, _, y): its third
    # coordinate is the world z, the height.
    tip = next_state.sites.tip.pos
    x = tip[:, 0]
    y = tip[:, 2]
    terminated = y <= TERMINATE_HEIGHT
    survive = np.where(terminated, 0.0, HEALTHY_REWARD)
    distance_penalty = -(DIST_X_WEIGHT * x**2 + (y - TARGET_HEIGHT) ** 2)
    # qvel[1:3]: the two hinges; the cart's velocity qvel[0] is not penalised.
    v1 = next_state.joints.hinge.qvel
    v2 = next_state.joints.hinge2.qvel
    velocity_penalty = -(HINGE_VEL_WEIGHT * v1**2 + HINGE2_VEL_WEIGHT * v2**2)
    total = survive + distance_penalty + velocity_penalty
    return total, {
        "survive": survive,
        "distance_penalty": distance_penalty,
        "velocity_penalty": velocity_penalty,
    }
