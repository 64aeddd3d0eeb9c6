"""The hand-written reward programs for environments without a MuJoCo model reproduce gymnasium's own rewards.

As tests/test_human_rewards.py does for MuJoCo: each program, called on the observation State of a rollout, one
transition at a time and all transitions batched, gives the reward `env.step` returned. Pendulum's observation
holds cos and sin of its angle in float32, so its angle (and the reward) is recovered to float32 precision;
the others match to float64's.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from autoreward.contract.reward_program import load, static_check
from autoreward.sim.observation_state import state_layout
from autoreward.sim.state import concatenate

REWARDS = Path(__file__).resolve().parent.parent / "envs" / "rewards"
STEPS = 400


def pump(observation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mountain car: push the way the car moves (it gains energy and reaches the flag), with some noise."""
    direction = 1.0 if observation[1] >= 0 else -1.0
    return np.array([np.clip(direction + rng.normal(0, 0.3), -1, 1)], dtype=np.float32)


# env id -> (reward program, tolerance, policy: None for random actions)
CASES = {
    "Pendulum-v1": ("pendulum_v1.py", 1e-6, None),
    "MountainCarContinuous-v0": ("mountain_car_continuous_v0.py", 1e-12, pump),
}


def rollout(env_id: str, policy, steps: int = STEPS):
    env = gym.make(env_id)
    layout = state_layout(env)
    env = layout.wrap(env)
    source = layout.source(env)
    rng = np.random.default_rng(0)
    env.action_space.seed(0)
    observation, _ = env.reset(seed=0)
    before = layout.state(layout.snapshot(source))
    states, actions, next_states, rewards, terminations = [], [], [], [], []
    for episode in range(1, steps):
        action = env.action_space.sample() if policy is None else policy(observation, rng)
        observation, reward, terminated, truncated, _ = env.step(action)
        after = layout.state(layout.snapshot(source))
        states.append(before)
        actions.append(action)
        next_states.append(after)
        rewards.append(float(reward))
        terminations.append(terminated)
        if terminated or truncated:
            observation, _ = env.reset(seed=episode)
            after = layout.state(layout.snapshot(source))
        before = after
    env.close()
    return states, np.stack(actions), next_states, np.array(rewards), np.array(terminations)


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def case(request):
    program, tolerance, policy = CASES[request.param]
    return request.param, (REWARDS / program).read_text(), tolerance, rollout(request.param, policy)


def test_passes_static_rules(case):
    _, code, _, _ = case
    result = static_check(code)
    assert result.ok, result.message


def test_matches_gymnasium_one_transition_at_a_time(case):
    env_id, code, tolerance, (states, actions, next_states, rewards, terminations) = case
    if env_id == "MountainCarContinuous-v0":
        assert terminations.sum() >= 2, "the car never reached the flag, so the goal term is untested"
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
