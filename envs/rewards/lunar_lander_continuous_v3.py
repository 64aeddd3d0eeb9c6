"""Gymnasium's own LunarLanderContinuous-v3 reward, re-implemented in autoreward's reward contract.

Terms: progress (how much the step raised gymnasium's shaping: nearer the pad, slower, more level, legs down),
main_fuel and side_fuel (what the engines burnt), and outcome (-100 when the lander crashed or flew out of view,
+100 when it came to rest), which replaces the others on the step that ends the episode, as in gymnasium.
Whether it crashed (its body touched the moon) and whether it rests (Box2D put it to sleep) are not in the
observation: the task reads them from the environment as extras (`game_over`, `awake`). The observation is
float32, so the shaping (and the reward) is recovered to float32 precision.
"""

import numpy as np

# Fixed coefficients of gymnasium's LunarLander (lunar_lander.py, step).
DISTANCE_WEIGHT = 100.0
SPEED_WEIGHT = 100.0
TILT_WEIGHT = 100.0
LEG_BONUS = 10.0
MAIN_FUEL = 0.30
SIDE_FUEL = 0.03
OUTCOME = 100.0


def shaping(state):
    obs = state.obs
    distance = np.sqrt(obs[:, 0] ** 2 + obs[:, 1] ** 2)
    speed = np.sqrt(obs[:, 2] ** 2 + obs[:, 3] ** 2)
    legs = obs[:, 6] + obs[:, 7]
    return -DISTANCE_WEIGHT * distance - SPEED_WEIGHT * speed - TILT_WEIGHT * np.abs(obs[:, 4]) + LEG_BONUS * legs


def compute_reward(state, action, next_state):
    throttle = np.clip(action, -1.0, 1.0)
    # The main engine burns only above 0, at 50% to 100%; a side engine only beyond 0.5 either way.
    main_power = np.where(throttle[:, 0] > 0.0, (np.clip(throttle[:, 0], 0.0, 1.0) + 1.0) * 0.5, 0.0)
    side_power = np.where(np.abs(throttle[:, 1]) > 0.5, np.clip(np.abs(throttle[:, 1]), 0.5, 1.0), 0.0)
    crashed = (next_state.extras.game_over > 0) | (np.abs(next_state.obs[:, 0]) >= 1.0)
    rested = next_state.extras.awake == 0
    ended = crashed | rested
    progress = np.where(ended, 0.0, shaping(next_state) - shaping(state))
    main_fuel = np.where(ended, 0.0, -MAIN_FUEL * main_power)
    side_fuel = np.where(ended, 0.0, -SIDE_FUEL * side_power)
    outcome = np.where(rested, OUTCOME, np.where(crashed, -OUTCOME, 0.0))  # resting wins, as in gymnasium
    total = progress + main_fuel + side_fuel + outcome
    return total, {"progress": progress, "main_fuel": main_fuel, "side_fuel": side_fuel, "outcome": outcome}
