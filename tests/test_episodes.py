"""What the designer is told the environment knows: when an episode ends, where it starts, how it trains."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gymnasium import utils
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.envs.registration import register, registry
from gymnasium.spaces import Box

from autoreward.config import Budget, TrainingConfig
from autoreward.llm.backends import ReplayLLM
from autoreward.llm.prompts import Prompts
from autoreward.loop.driver import DesignLoop
from autoreward.loop.training import describe_training
from autoreward.task import episodes
from autoreward.task.describe import describe_task
from autoreward.task.files import parse_task, task_from_sentence

from .review_fixtures import make_run


def _facts(env_id: str, **kwargs) -> str:
    task = task_from_sentence(env_id, "move")
    if kwargs:
        task = dataclasses.replace(task, env_kwargs=kwargs)
    return describe_task(task).split("# When an episode ends", 1)[1]


def test_hopper_says_when_its_episodes_end_and_where_it_starts_in_the_states_fields():
    text = _facts("Hopper-v5")
    assert "joints.rootz.qpos (the torso's height) falls to 0.7 m or below" in text
    assert "joints.rooty.qpos (the torso's angle) leaves (-0.2, 0.2) rad" in text
    assert "after 1000 steps (the time limit)" in text
    assert "joints.rootz.qpos = 1.25" in text and "bodies.torso.pos = (0, 0, 1.25)" in text
    assert "noise of scale 0.005" in text


def test_environments_that_never_end_early_say_so_and_ant_gives_its_health_range():
    assert _facts("HalfCheetah-v5").startswith(": never early; only after 1000 steps")
    assert _facts("Swimmer-v5").startswith(": never early")
    assert "joints.root.qpos[:, 2] (the torso's height) leaves [0.2, 1] m" in _facts("Ant-v5")


def test_a_task_that_changes_the_health_rule_is_told_its_own_rule():
    assert ": never early (this task sets terminate_when_unhealthy = false); only after 1000 steps" in _facts(
        "Hopper-v5", terminate_when_unhealthy=False
    )
    assert "falls to 0.5 m or below" in _facts("Hopper-v5", healthy_z_range=(0.5, float("inf")))


DROP_XML = """
<mujoco><option timestep="0.01"/>
  <worldbody><body name="box" pos="0 0 0"><joint name="height" type="slide" axis="0 0 1"/>
    <geom type="box" size="0.1 0.1 0.1" mass="1" contype="0" conaffinity="0"/></body></worldbody>
  <actuator><motor name="lift" joint="height" gear="20" ctrlrange="-1 1" ctrllimited="true"/></actuator>
</mujoco>
"""
DROP_AT = 0.6  # the episode ends when the box's height falls below this (the rule the measurement must find)


class DropEnv(MujocoEnv, utils.EzPickle):
    """A box on a vertical slide, started at 1 m: an episode ends when it falls below DROP_AT."""

    metadata = {"render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"], "render_fps": 25}

    def __init__(self, xml_file: str, **kwargs):
        utils.EzPickle.__init__(self, xml_file, **kwargs)
        space = Box(-np.inf, np.inf, shape=(2,), dtype=np.float64)
        MujocoEnv.__init__(self, xml_file, 4, observation_space=space, **kwargs)
        self.init_qpos[:] = 1.0

    def step(self, action):
        self.do_simulation(action, self.frame_skip)
        return self._get_obs(), 0.0, bool(self.data.qpos[0] < DROP_AT), False, {}

    def _get_obs(self):
        return np.concatenate([self.data.qpos, self.data.qvel])

    def reset_model(self):
        self.set_state(self.init_qpos + self.np_random.uniform(-0.05, 0.05, 1), self.init_qvel)
        return self._get_obs()


def test_a_model_of_ones_own_that_ends_episodes_gets_a_measured_threshold_once(tmp_path, monkeypatch):
    (tmp_path / "drop.xml").write_text(DROP_XML)
    if "DropTest-v0" not in registry:
        register(id="DropTest-v0", entry_point=DropEnv, max_episode_steps=200)
    monkeypatch.setenv(episodes.CACHE_VARIABLE, str(tmp_path / "cache"))
    task = parse_task(
        f'id = "drop"\nenv = "DropTest-v0"\ndescription = "stay up"\n[env_kwargs]\nxml_file = "{tmp_path / "drop.xml"}"\n',
        "drop.toml",
    )
    text = describe_task(task)
    line = next(line for line in text.splitlines() if line.startswith("# When an episode ends"))
    assert "(observed on random actions, not the environment's rule)" in line
    threshold = float(line.split("joints.height.qpos fell to ")[1].split(" or below")[0])
    assert abs(threshold - DROP_AT) <= 0.05 * DROP_AT  # within 5% of the rule
    # Cached per environment and arguments: the second description measures nothing.
    monkeypatch.setattr(episodes, "measure_endings", lambda *a, **k: pytest.fail("measured twice"))
    assert describe_task(task) == text


def test_the_first_designer_prompt_says_how_the_policy_will_be_trained(tmp_path):
    store = make_run(tmp_path / "runs", feedback="fitness")  # half_cheetah_backward, 512 steps, PPO
    (tmp_path / "replies.jsonl").write_text("")
    loop = DesignLoop(store, ReplayLLM(tmp_path / "replies.jsonl"), Prompts(), tmp_path / "runs")
    system = loop.designer.first_messages(loop.brief(None, None, describe_task(store.config().task)))[0].content
    assert "PPO (stable-baselines3) for 512 environment steps in all, 4 environments stepped together" in system
    assert "episodes of at most 1000 steps, discount 0.99" in system
    assert "normalized by a running estimate of the return's scale (VecNormalize)" in system
    assert "# When an episode ends: never early" in system  # the State's facts reach it too
    sac = TrainingConfig.from_budget(Budget(algo="sac", steps=1000))
    assert "learns from the raw rewards, with no normalization" in describe_training(sac, 1000)
