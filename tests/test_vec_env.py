"""The reward path used in training: the batch reward equals the environment's own, terminal steps included."""

import numpy as np
import pytest

from autoreward.contract.reward_program import load
from autoreward.sim.vec_env import EPISODE_INFO_KEY, make_vec_env
from autoreward.task.files import task_from_sentence

from .conftest import human_reward


def test_program_reward_equals_the_environment_reward_across_resets(hopper):
    function = load(human_reward(hopper))
    env = make_vec_env(hopper, n_envs=3, seed=5, reward_source="program", reward_function=function)
    env.reset()
    rng = np.random.default_rng(0)
    resets = 0
    for _ in range(200):
        actions = rng.uniform(-1, 1, size=(3, 3)).astype(np.float32)
        _, rewards, dones, infos = env.step(actions)
        natives = [info.get(EPISODE_INFO_KEY) for info in infos]
        resets += int(dones.sum())
        # the environment's own reward is kept in the window's per-episode books; compare step by step
        window = env.take_window()
        parts = sum(np.concatenate(window.components[name]) for name in ("forward", "survive", "ctrl"))
        np.testing.assert_allclose(parts, np.concatenate(window.rewards), atol=1e-9)
        for episode in filter(None, natives):
            assert abs(episode.native_return - episode.reward_return) < 1e-4
    assert resets > 5  # random actions make the hopper fall: terminal steps were exercised


def test_native_and_sparse_sources(hopper):
    native = make_vec_env(hopper, 2, 0, "native")
    sparse = make_vec_env(hopper, 2, 0, "sparse")
    native.reset()
    sparse.reset()
    actions = np.zeros((2, 3), dtype=np.float32)
    for _ in range(5):
        _, native_rewards, _, _ = native.step(actions)
        _, sparse_rewards, _, _ = sparse.step(actions)
    assert native_rewards.shape == sparse_rewards.shape == (2,)
    # sparse = this step's fitness term, the x displacement; the native reward adds a survival bonus of 1
    assert np.all(native_rewards > 0.9) and np.all(np.abs(sparse_rewards) < 0.1)


def test_episodes_report_fitness_length_and_component_returns(hopper):
    env = make_vec_env(hopper, 1, 0, "program", load(human_reward(hopper)))
    episode = _first_episode(env)
    assert episode.length > 0 and episode.terminated
    assert set(episode.component_returns) == {"forward", "survive", "ctrl"}
    assert abs(sum(episode.component_returns.values()) - episode.reward_return) < 1e-9
    assert episode.fitness is not None


def test_terminal_states_are_captured_before_the_auto_reset(hopper):
    """At a step that ends an episode, next_state is the terminal state and the next step starts from the reset one.

    Hopper's observation is qpos[1:] then qvel clipped to ±10, so each state can be checked against SB3's
    terminal observation and against the observation returned after the reset.
    """
    env = make_vec_env(hopper, n_envs=2, seed=3, reward_source="program", reward_function=load(human_reward(hopper)))
    seen = []
    env.observers.append(lambda state, action, next_state: seen.append((state.qpos.copy(), next_state.qpos.copy())))
    observations = env.reset()
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(150):
        previous = observations
        observations, _, dones, infos = env.step(rng.uniform(-1, 1, size=(2, 3)).astype(np.float32))
        state_qpos, next_qpos = seen[-1]
        np.testing.assert_array_equal(state_qpos[:, 1:], previous[:, :5])  # the step started where the last left off
        for row in np.flatnonzero(dones):
            np.testing.assert_array_equal(next_qpos[row, 1:], infos[row]["terminal_observation"][:5])
            assert not np.array_equal(next_qpos[row, 1:], observations[row, :5])  # the reset state differs
            ended += 1
    assert ended > 3


def test_components_that_come_and_go_are_booked_by_name(hopper):
    """A reward whose components change from step to step (the checker compares only two calls) keeps exact books."""
    calls = []

    def reward(state, action, next_state):
        calls.append(None)
        x = next_state.joints.rootx.qpos - state.joints.rootx.qpos
        if len(calls) % 2:
            return x + 1.0, {"move": x, "alive": np.ones_like(x)}
        return 2 * x, {"alive": x, "move": x, "bonus": np.zeros_like(x)}  # another order, and one more term

    env = make_vec_env(hopper, 1, 0, "program", reward)
    episode = _first_episode(env)
    window = env.take_window()
    assert set(episode.component_returns) == {"move", "alive", "bonus"}
    assert abs(sum(episode.component_returns.values()) - episode.reward_return) < 1e-9
    assert len(window.components["move"]) == len(window.rewards) == episode.length
    assert len(window.components["bonus"]) == episode.length // 2
    np.testing.assert_allclose(
        sum(np.concatenate(window.components[name]).sum() for name in ("move", "alive", "bonus")), window.reward_sum
    )


def rollout(env, steps: int, seed: int = 0):
    """Rewards and finished episodes of `steps` steps of random actions."""
    rng = np.random.default_rng(seed)
    env.reset()
    rewards, episodes = [], []
    for _ in range(steps):
        _, reward, _, infos = env.step(rng.uniform(-1, 1, size=(env.num_envs, 3)).astype(np.float32))
        rewards.append(reward)
        episodes += [info[EPISODE_INFO_KEY] for info in infos if EPISODE_INFO_KEY in info]
    return np.array(rewards), episodes


def test_copying_only_the_fields_read_changes_nothing(hopper):
    function = load(human_reward(hopper))
    some = make_vec_env(hopper, 3, 2, "program", function)
    every = make_vec_env(hopper, 3, 2, "program", function, copy_all_fields=True)
    some_rewards, some_episodes = rollout(some, 120)
    every_rewards, every_episodes = rollout(every, 120)
    np.testing.assert_array_equal(some_rewards, every_rewards)
    assert some_episodes == every_episodes and len(some_episodes) > 5
    # Hopper's reward and fitness read joints only: the other fields are not copied, and hold NaN, not stale values.
    assert some.venv.copied_fields == {"qpos", "qvel"}
    assert np.isnan(some.venv.after["xpos"]).all() and np.isfinite(some.venv.after["qpos"]).all()
    assert every.venv.copied_fields == set(every.layout.shapes)


def late_reader():
    """A reward that reads two more fields from its sixth call on."""
    calls = []

    def reward(state, action, next_state):
        calls.append(None)
        x = next_state.joints.rootx.qpos - state.joints.rootx.qpos
        if len(calls) >= 6:
            x = x + 1e-3 * np.abs(next_state.bodies.torso.cfrc_ext).sum(axis=1) + 1e-3 * state.time
        return x, {"x": x}

    return reward


def test_a_field_first_read_late_voids_that_step_and_then_every_field_is_copied(hopper):
    late = make_vec_env(hopper, 2, 4, "program", late_reader())
    every = make_vec_env(hopper, 2, 4, "program", late_reader(), copy_all_fields=True)
    with pytest.warns(RuntimeWarning, match="cfrc_ext, time for the first time after the first step"):
        late_rewards, _ = rollout(late, 60, seed=1)
    every_rewards, _ = rollout(every, 60, seed=1)
    assert np.isfinite(late_rewards).all()
    np.testing.assert_array_equal(late_rewards[:5], every_rewards[:5])
    np.testing.assert_array_equal(late_rewards[5], [0.0, 0.0])  # read NaN: lost, not passed on to training
    np.testing.assert_array_equal(late_rewards[6:], every_rewards[6:])  # exact again from the next step
    assert late.venv.copied_fields == set(late.layout.shapes)


def test_nothing_is_copied_when_nothing_reads_the_state():
    env = make_vec_env(task_from_sentence("Hopper-v5", "hop"), 2, 0, "native")  # no fitness, no program
    rewards, _ = rollout(env, 30)
    assert env.venv.copied_fields == set() and np.isfinite(rewards).all()


def _first_episode(env):
    """The book of the first episode of one Hopper pushing with every actuator."""
    env.reset()
    while True:
        _, _, dones, infos = env.step(np.ones((1, 3), dtype=np.float32))
        if dones[0]:
            return infos[0][EPISODE_INFO_KEY]
