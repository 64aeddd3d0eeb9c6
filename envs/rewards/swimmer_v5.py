"""Gymnasium's own Swimmer-v5 reward, re-implemented in autoreward's reward contract.

Terms: forward (x velocity of the root) and ctrl (quadratic action cost).
"""

import numpy as np

# Defaults of gymnasium's Swimmer-v5 (swimmer_v5.py).
FORWARD_REWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 1e-4


def compute_reward(state, action, next_state):
    # Gymnasium reads qpos[0], the root's x slide joint, not the torso body's xpos.
    x_velocity = (next_state.joints.slider1.qpos - state.joints.slider1.qpos) / next_state.dt
    forward = FORWARD_REWARD_WEIGHT * x_velocity
    # The action keeps its dtype: gymnasium squares and sums the float32 action in float32,
    # so doing the same reproduces its reward bit for bit.
    ctrl = -(CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1))
    total = forward + ctrl
    return total, {"forward": forward, "ctrl": ctrl}
