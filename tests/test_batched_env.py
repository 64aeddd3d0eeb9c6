"""The batched CPU simulator is gymnasium's environments, stepped as one batch: same seeds, same trajectories."""

import dataclasses

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from autoreward.config import TrainingConfig
from autoreward.contract.reward_program import load
from autoreward.loop.runner import Runner
from autoreward.loop.training import train
from autoreward.sim.batched_env import SEMANTICS, BatchedVecEnv
from autoreward.sim.vec_env import EPISODE_INFO_KEY, make_vec_env
from autoreward.task.files import find_task, task_from_sentence

from .conftest import human_reward

# Environments whose episodes end within the test's 200 random steps: by falling, or by time limits of 50 and 100.
ENDING = {"Hopper-v5", "Walker2d-v5", "Ant-v5", "InvertedDoublePendulum-v5", "Humanoid-v5", "Reacher-v5", "Pusher-v5"}


def paired(task, n_envs, seed=7, reward_source="native", reward_function=None):
    # Every field copied on the gymnasium path too, so that whole States can be compared.
    gym_env = make_vec_env(task, n_envs, seed, reward_source, reward_function, copy_all_fields=True)
    batched = make_vec_env(task, n_envs, seed, reward_source, reward_function, simulator="batched")
    assert isinstance(batched.venv, BatchedVecEnv) and isinstance(gym_env.venv, DummyVecEnv)
    return gym_env, batched


@pytest.mark.parametrize("env_id", list(SEMANTICS))
def test_batched_steps_are_gymnasium_steps(env_id):
    """Same seed and actions: the same observations, rewards, ends, terminal observations and states, exactly."""
    gym_env, batched = paired(task_from_sentence(env_id, "move"), n_envs=3)
    np.testing.assert_array_equal(gym_env.reset(), batched.reset())  # the same reset noise from the same seeds
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(200):
        actions = rng.uniform(-1, 1, size=(3, *gym_env.action_space.shape)).astype(np.float32)
        obs_g, reward_g, done_g, infos_g = gym_env.step(actions)
        obs_b, reward_b, done_b, infos_b = batched.step(actions)
        np.testing.assert_array_equal(obs_b, obs_g)
        np.testing.assert_array_equal(done_b, done_g)
        # The batched path's native reward is the task contract's reproduction of gymnasium's (to 1e-6).
        np.testing.assert_allclose(reward_b, reward_g, atol=1e-5)
        for name, array in gym_env.venv.before.items():  # the State the next reward will see
            np.testing.assert_array_equal(batched.venv.before[name], array, err_msg=name)
        for row in np.flatnonzero(done_g):
            ended += 1
            np.testing.assert_array_equal(infos_b[row]["terminal_observation"], infos_g[row]["terminal_observation"])
            assert infos_b[row]["TimeLimit.truncated"] == infos_g[row]["TimeLimit.truncated"]
            episode_g, episode_b = infos_g[row][EPISODE_INFO_KEY], infos_b[row][EPISODE_INFO_KEY]
            assert (episode_b.length, episode_b.terminated) == (episode_g.length, episode_g.terminated)
    if env_id in ENDING:
        assert ended > 0, "some episodes should have ended: terminal steps and resets were not exercised"


def test_time_limit_truncates_and_the_terminal_state_is_the_true_one():
    task = dataclasses.replace(find_task("half_cheetah_forward"), max_episode_steps=5)
    env = make_vec_env(task, 2, 0, "program", load(human_reward(task)), simulator="batched")
    seen = []
    env.observers.append(lambda state, action, next_state: seen.append(next_state.qpos.copy()))
    first = env.reset()
    for step in range(5):
        observations, _, dones, infos = env.step(np.full((2, 6), 0.5, dtype=np.float32))
    assert dones.all() and step == 4
    for row in range(2):
        assert infos[row]["TimeLimit.truncated"] is True
        assert infos[row][EPISODE_INFO_KEY].terminated is False and infos[row][EPISODE_INFO_KEY].length == 5
        # next_state of the last step is the state the episode ended in, not the reset one ...
        np.testing.assert_array_equal(infos[row]["terminal_observation"][:8], seen[-1][row, 1:])
    # ... and the next step starts from the reset state, which is what the new observation shows.
    assert not np.allclose(observations, infos[0]["terminal_observation"])
    np.testing.assert_array_equal(env.venv.before["qpos"][:, 1:], observations[:, :8])
    assert not np.array_equal(observations, first)  # reset noise draws on, as gymnasium's does


def test_reward_program_and_fitness_see_the_same_episodes_on_both_paths(hopper):
    function = load(human_reward(hopper))
    gym_env, batched = paired(hopper, 2, seed=3, reward_source="program", reward_function=function)
    gym_env.reset(), batched.reset()
    rng = np.random.default_rng(1)
    for _ in range(150):
        actions = rng.uniform(-1, 1, size=(2, 3)).astype(np.float32)
        _, reward_g, _, _ = gym_env.step(actions)
        _, reward_b, _, _ = batched.step(actions)
        np.testing.assert_array_equal(reward_b, reward_g)
    window_g, window_b = gym_env.take_window(), batched.take_window()
    assert len(window_g.episodes) > 3
    for episode_g, episode_b in zip(window_g.episodes, window_b.episodes, strict=True):
        assert episode_b.fitness == episode_g.fitness and episode_b.reward_return == episode_g.reward_return
        assert episode_b.component_returns == episode_g.component_returns
        assert episode_b.native_return == pytest.approx(episode_g.native_return, abs=1e-4)


def test_a_task_without_batched_semantics_falls_back_to_gymnasium_and_says_why(cheetah):
    with pytest.warns(RuntimeWarning, match="InvertedPendulum-v5 has no batched semantics.*using gymnasium"):
        env = make_vec_env(task_from_sentence("InvertedPendulum-v5", "balance"), 1, 0, "native", simulator="batched")
    assert isinstance(env.venv, DummyVecEnv)
    custom = dataclasses.replace(cheetah, env_kwargs={"ctrl_cost_weight": 0.5})
    with pytest.warns(RuntimeWarning, match="sets env_kwargs \\(ctrl_cost_weight\\)"):
        env = make_vec_env(custom, 1, 0, "native", simulator="batched")
    assert isinstance(env.venv, DummyVecEnv)


@pytest.mark.slow  # two trainings in workers: about a minute on two cores
def test_training_on_the_batched_simulator_trains_the_same_policy(hopper, tmp_path):
    config = TrainingConfig(steps=1024, n_envs=2, eval_episodes=2, curve_points=4)
    on_gymnasium = train(hopper, config, tmp_path / "gymnasium", human_reward(hopper), runner=Runner.connect())
    on_batch = train(
        hopper,
        dataclasses.replace(config, simulator="batched"),
        tmp_path / "batched",
        human_reward(hopper),
        runner=Runner.connect(),
    )
    assert on_batch.steps >= 1024 and len(on_batch.curve) == 4
    assert [p.fitness for p in on_batch.curve] == [p.fitness for p in on_gymnasium.curve]
    assert on_batch.evaluation.fitness_mean == on_gymnasium.evaluation.fitness_mean
