"""Gymnasium's own Reacher-v5 reward, re-implemented in autoreward's reward contract.

Terms: dist (negative fingertip-to-target distance) and ctrl (quadratic
action cost).
"""

import numpy as np

# Defaults of gymnasium's Reacher-v5 (reacher_v5.py).
REWARD_DIST_WEIGHT = 1.0
REWARD_CONTROL_WEIGHT = 1.0


def compute_reward(state, action, next_state):
    # get_body_com() in gymnasium returns the body frame's origin (data.xpos),
    # not its centre of mass, so this uses .pos rather than .com.
    vec = next_state.bodies.fingertip.pos - next_state.bodies.target.pos
    dist = -REWARD_DIST_WEIGHT * np.linalg.norm(vec, axis=1)
    # The action keeps its dtype: gymnasium squares and sums the float32 action in float32,
    # so doing the same reproduces its reward bit for bit.
    ctrl = -(REWARD_CONTROL_WEIGHT * np.sum(np.square(action), axis=1))
    total = dist + ctrl
    return total, {"dist": dist, "ctrl": ctrl}
