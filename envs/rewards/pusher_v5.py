"""Gymnasium's own Pusher-v5 reward, re-implemented in autoreward's reward contract.

Terms: near (negative arm-tip-to-object distance), dist (negative
object-to-goal distance) and ctrl (quadratic action cost).
"""

import numpy as np

# Defaults of gymnasium's Pusher-v5 (pusher_v5.py).
REWARD_NEAR_WEIGHT = 0.5
REWARD_DIST_WEIGHT = 1.0
REWARD_CONTROL_WEIGHT = 0.1


def compute_reward(state, action, next_state):
    bodies = next_state.bodies
    # get_body_com() in gymnasium returns the body frame's origin (data.xpos).
    near = -REWARD_NEAR_WEIGHT * np.linalg.norm(bodies.object.pos - bodies.tips_arm.pos, axis=1)
    dist = -REWARD_DIST_WEIGHT * np.linalg.norm(bodies.object.pos - bodies.goal.pos, axis=1)
    # The action keeps its dtype: gymnasium squares and sums the float32 action in float32,
    # so doing the same reproduces its reward bit for bit.
    ctrl = -(REWARD_CONTROL_WEIGHT * np.sum(np.square(action), axis=1))
    total = dist + ctrl + near
    return total, {"near": near, "dist": dist, "ctrl": ctrl}
