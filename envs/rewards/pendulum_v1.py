"""Gymnasium's own Pendulum-v1 reward, re-implemented in autoreward's reward contract.

Terms: angle (how far the pendulum is from upright), velocity (how fast it turns) and effort (the torque),
each a cost on the state the step started from, as gymnasium charges it.
The observation holds cos and sin of the angle in float32, so the angle is recovered to float32 precision.
"""

import numpy as np

# Fixed coefficients of gymnasium's Pendulum-v1 (pendulum.py, step).
VELOCITY_WEIGHT = 0.1
EFFORT_WEIGHT = 0.001
MAX_TORQUE = 2.0


def compute_reward(state, action, next_state):
    # arctan2 gives the angle in [-pi, pi], 0 upright: gymnasium's angle_normalize of its own angle.
    theta = np.arctan2(state.obs.sin_theta, state.obs.cos_theta)
    torque = np.clip(action[:, 0], -MAX_TORQUE, MAX_TORQUE)
    angle = -(theta**2)
    velocity = -VELOCITY_WEIGHT * state.obs.angular_velocity**2
    effort = -EFFORT_WEIGHT * torque**2
    return angle + velocity + effort, {"angle": angle, "velocity": velocity, "effort": effort}
