"""The hand-written reward programs in envs/rewards reproduce gymnasium's own rewards.

Each program re-implements the default reward of one gymnasium MuJoCo v5
environment. Rolling out random actions, the program's total must equal the
reward `env.step` returned, step by step, both when called on one transition
at a time and when called once on every transition batched together.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from autoreward.contract.reward_program import load, static_check
from autoreward.sim.state import StateLayout, concatenate

REWARDS = Path(__file__).resolve().parent.parent / "envs" / "rewards"

PROGRAMS = {
    "HalfCheetah-v5": "half_cheetah_v5.py",
    "Hopper-v5": "hopper_v5.py",
    "Walker2d-v5": "walker2d_v5.py",
    "Ant-v5": "ant_v5.py",
    "Humanoid-v5": "humanoid_v5.py",
    "Swimmer-v5": "swimmer_v5.py",
    "Reacher-v5": "reacher_v5.py",
    "Pusher-v5": "pusher_v5.py",
    "InvertedDoublePendulum-v5": "inverted_double_pendulum_v5.py",
}
# Environments whose reward has a healthy/alive term: random actions make them
# fall within a few dozen steps, so the rollout must contain terminations.
TERMINATING = {"Hopper-v5", "Walker2d-v5", "InvertedDoublePendulum-v5"}

STEPS = 200
ATOL = 1e-6


def rollout(env_id: str, steps: int = STEPS):
    """Random-action transitions of one environment with gymnasium's reward for each."""
    env = gym.make(env_id)
    try:
        layout = StateLayout.from_env(env)
        data = env.unwrapped.data
        env.action_space.seed(0)
        env.reset(seed=0)
        episode = 0
        before = layout.state(layout.snapshot(data))
        states, actions, next_states, rewards, terminations, infos = [], [], [], [], [], []
        for _ in range(steps):
            action = env.action_space.sample()
            _, reward, terminated, truncated, info = env.step(action)
            after = layout.state(layout.snapshot(data))
            states.append(before)
            actions.append(action)
            next_states.append(after)
            rewards.append(float(reward))
            terminations.append(bool(terminated))
            infos.append(info)
            if terminated or truncated:
                episode += 1
                env.reset(seed=episode)
                after = layout.state(layout.snapshot(data))
            before = after
        return states, actions, next_states, np.array(rewards), np.array(terminations), infos
    finally:
        env.close()


@pytest.fixture(scope="module", params=list(PROGRAMS), ids=list(PROGRAMS))
def case(request):
    env_id = request.param
    code = (REWARDS / PROGRAMS[env_id]).read_text()
    return env_id, code, rollout(env_id)


def test_passes_static_rules(case):
    _, code, _ = case
    result = static_check(code)
    assert result.ok, result.message


def test_matches_gymnasium_one_transition_at_a_time(case):
    env_id, code, (states, actions, next_states, rewards, terminations, _) = case
    if env_id in TERMINATING:
        assert terminations.any(), "the rollout never terminated, so the healthy term is untested"
        assert (~terminations).any()
    fn = load(code)
    totals = []
    for state, action, next_state in zip(states, actions, next_states):
        total, parts = fn(state, action[None, :], next_state)
        assert total.shape == (1,)
        assert all(np.shape(part) == (1,) for part in parts.values())
        np.testing.assert_allclose(total, sum(parts.values()), atol=1e-12, rtol=0)
        totals.append(float(total[0]))
    np.testing.assert_allclose(np.array(totals), rewards, atol=ATOL, rtol=0)


def test_matches_gymnasium_batched(case):
    env_id, code, (states, actions, next_states, rewards, _, infos) = case
    fn = load(code)
    total, parts = fn(concatenate(states), np.stack(actions), concatenate(next_states))
    assert total.shape == rewards.shape
    for name, part in parts.items():
        assert np.shape(part) == rewards.shape, name
        assert np.issubdtype(np.asarray(part).dtype, np.floating), name
    np.testing.assert_allclose(total, sum(parts.values()), atol=1e-12, rtol=0)
    np.testing.assert_allclose(total, rewards, atol=ATOL, rtol=0)


def test_components_match_gymnasium_info_terms(case):
    """Each component is the info term of the same name, `reward_` prefix dropped, with its sign."""
    _, code, (states, actions, next_states, _, _, infos) = case
    fn = load(code)
    _, parts = fn(concatenate(states), np.stack(actions), concatenate(next_states))
    for name, part in parts.items():
        key = f"reward_{name}" if f"reward_{name}" in infos[0] else name
        assert key in infos[0], f"component {name!r} is not one of gymnasium's info terms {sorted(infos[0])}"
        expected = np.array([float(info[key]) for info in infos])
        np.testing.assert_allclose(part, expected, atol=ATOL, rtol=0, err_msg=name)
