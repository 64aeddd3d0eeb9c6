"""The hand-written reward programs for environments without a MuJoCo model reproduce gymnasium's own rewards.

As tests/test_human_rewards.py does for MuJoCo: each program, called on the observation State of a rollout, one
transition at a time and all transitions batched, gives the reward `env.step` returned. Pendulum's observation
holds cos and sin of its angle in float32, so its angle (and the reward) is recovered to float32 precision;
LunarLander's holds its position, speed and tilt in float32, and its shaping (about 100 times those) is recovered
to a few float32 steps of that size (1e-4); MountainCarContinuous matches to float64's. LunarLander's terminal
reward needs what the observation lacks (did the body touch the moon, is the lander at rest): its task reads them
from the environment as extras (`env.game_over`, `env.lander.awake`), and the rollout here does as training does.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.box2d.lunar_lander import heuristic

from autoreward.contract.reward_program import load, static_check
from autoreward.sim.observation_state import state_layout
from autoreward.sim.state import concatenate

REWARDS = Path(__file__).resolve().parent.parent / "envs" / "rewards"
STEPS = 400


def pump(env, observation: np.ndarray, rng: np.random.Generator, episode: int) -> np.ndarray:
    """Mountain car: push the way the car moves (it gains energy and reaches the flag), with some noise."""
    direction = 1.0 if observation[1] >= 0 else -1.0
    return np.array([np.clip(direction + rng.normal(0, 0.3), -1, 1)], dtype=np.float32)


def land_or_fall(env, observation: np.ndarray, rng: np.random.Generator, episode: int) -> np.ndarray:
    """Lunar lander: gymnasium's own landing controller, a little noisy (it comes to rest, +100), except every
    third episode, of random actions (it crashes or drifts away, -100)."""
    if episode % 3 == 2:
        return env.action_space.sample()
    return np.clip(heuristic(env, observation) + rng.normal(0, 0.3, 2), -1, 1).astype(np.float32)


LUNAR_LANDER_EXTRAS = {"game_over": "env.game_over", "awake": "env.lander.awake"}  # as envs/lunar_lander_land.toml

# env id -> (reward program, tolerance, policy: None for random actions, the task's extras, steps)
CASES = {
    "Pendulum-v1": ("pendulum_v1.py", 1e-6, None, {}, STEPS),
    "MountainCarContinuous-v0": ("mountain_car_continuous_v0.py", 1e-12, pump, {}, STEPS),
    "LunarLanderContinuous-v3": ("lunar_lander_continuous_v3.py", 1e-4, land_or_fall, LUNAR_LANDER_EXTRAS, 2000),
}


def rollout(env_id: str, policy, extras: dict[str, str], steps: int):
    env = gym.make(env_id)
    layout = state_layout(env, extras=extras)
    env = layout.wrap(env)
    source = layout.source(env)
    rng = np.random.default_rng(0)
    env.action_space.seed(0)
    observation, _ = env.reset(seed=0)
    before = layout.state(layout.snapshot(source))
    states, actions, next_states, rewards, terminations = [], [], [], [], []
    episodes = 0
    for episode in range(1, steps):
        action = env.action_space.sample() if policy is None else policy(env, observation, rng, episodes)
        observation, reward, terminated, truncated, _ = env.step(action)
        after = layout.state(layout.snapshot(source))
        states.append(before)
        actions.append(action)
        next_states.append(after)
        rewards.append(float(reward))
        terminations.append(terminated)
        if terminated or truncated:
            episodes += 1
            observation, _ = env.reset(seed=episode)
            after = layout.state(layout.snapshot(source))
        before = after
    env.close()
    return states, np.stack(actions), next_states, np.array(rewards), np.array(terminations)


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def case(request):
    program, tolerance, policy, extras, steps = CASES[request.param]
    return request.param, (REWARDS / program).read_text(), tolerance, rollout(request.param, policy, extras, steps)


def test_passes_static_rules(case):
    _, code, _, _ = case
    result = static_check(code)
    assert result.ok, result.message


def test_matches_gymnasium_one_transition_at_a_time(case):
    env_id, code, tolerance, (states, actions, next_states, rewards, terminations) = case
    if env_id == "MountainCarContinuous-v0":
        assert terminations.sum() >= 2, "the car never reached the flag, so the goal term is untested"
    if env_id == "LunarLanderContinuous-v3":  # both terminal rewards, and a crash the observation cannot show
        assert set(rewards[terminations]) == {100.0, -100.0}, rewards[terminations]
        crashed = [float(s.extras.game_over[0]) for s in next_states]
        assert 1.0 in crashed and crashed.count(1.0) < len(crashed) / 10, "the body never touched the moon"
    fn = load(code)
    totals = []
    for state, action, next_state in zip(states, actions, next_states):
        total, parts = fn(state, action[None, :], next_state)
        assert total.shape == (1,)
        np.testing.assert_allclose(total, sum(parts.values()), atol=1e-12, rtol=0)
        totals.append(float(total[0]))
    np.testing.assert_allclose(np.array(totals), rewards, atol=tolerance, rtol=0)


def test_matches_gymnasium_batched(case):
    _, code, tolerance, (states, actions, next_states, rewards, _) = case
    total, parts = load(code)(concatenate(states), actions, concatenate(next_states))
    assert total.shape == rewards.shape
    assert all(np.shape(part) == rewards.shape for part in parts.values())
    np.testing.assert_allclose(total, rewards, atol=tolerance, rtol=0)
