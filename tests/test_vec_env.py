"""The reward path used in training: the batch reward equals the environment's own, terminal steps included."""

import numpy as np

from autoreward.reward_program import load
from autoreward.vec_env import EPISODE_INFO_KEY, make_vec_env

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
    env.reset()
    while True:
        _, _, dones, infos = env.step(np.ones((1, 3), dtype=np.float32))
        if dones[0]:
            episode = infos[0][EPISODE_INFO_KEY]
            break
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
    env.reset()
    while True:
        _, _, dones, infos = env.step(np.ones((1, 3), dtype=np.float32))
        if dones[0]:
            episode = infos[0][EPISODE_INFO_KEY]
            break
    window = env.take_window()
    assert set(episode.component_returns) == {"move", "alive", "bonus"}
    assert abs(sum(episode.component_returns.values()) - episode.reward_return) < 1e-9
    assert len(window.components["move"]) == len(window.rewards) == episode.length
    assert len(window.components["bonus"]) == episode.length // 2
    np.testing.assert_allclose(
        sum(np.concatenate(window.components[name]).sum() for name in ("move", "alive", "bonus")), window.reward_sum
    )
