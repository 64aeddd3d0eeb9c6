"""A point mass on a table that slides towards a goal: a MuJoCo robot in its own package.

Importing the package registers `PointGoal-v0` with gymnasium, so `gymnasium.make("point_goal:PointGoal-v0")`
imports it and makes the environment (gymnasium's `module:id` syntax), and autoreward takes the same id.
"""

from gymnasium.envs.registration import register

register(id="PointGoal-v0", entry_point="point_goal.env:PointGoalEnv", max_episode_steps=200)
