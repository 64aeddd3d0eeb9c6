"""Gymnasium's own MountainCarContinuous-v0 reward, re-implemented in autoreward's reward contract.

Terms: goal (100 on the step that reaches the flag: position at least 0.45 and velocity at least 0)
and effort (0.1 times the square of the action, unclipped, as gymnasium charges it).
"""

import numpy as np

# Defaults of gymnasium's Continuous_MountainCarEnv. The car's state is float32 there, and so is its test of
# the goal, hence the float32 threshold (0.45 in float32 is a hair below 0.45).
GOAL_POSITION = np.float32(0.45)
GOAL_VELOCITY = np.float32(0.0)
GOAL_REWARD = 100.0
EFFORT_WEIGHT = 0.1


def compute_reward(state, action, next_state):
    reached = (next_state.obs.position >= GOAL_POSITION) & (next_state.obs.velocity >= GOAL_VELOCITY)
    goal = np.where(reached, GOAL_REWARD, 0.0)
    effort = -EFFORT_WEIGHT * action[:, 0].astype(np.float64) ** 2
    return goal + effort, {"goal": goal, "effort": effort}
