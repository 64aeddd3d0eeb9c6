"""What the designer is told the environment knows: when an episode ends, where it starts, how it trains."""

from __future__ import annotations

import dataclasses
import re

import mujoco
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
from autoreward.loop.runner import Runner
from autoreward.loop.training import describe_training
from autoreward.task import episodes
from autoreward.task.describe import describe_task
from autoreward.task.files import find_task, make_env, parse_task, task_from_sentence

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


ON_THE_GROUND = re.compile(
    r"^#   (?P<names>bodies\.\w+(?:, bodies\.\w+)*): (?:each )?on the ground, carries about (?P<load>[\d.e+]+) N; "
    r"pos z (?P<pos>-?[\d.]+) m, com z (?P<com>-?[\d.]+) m \((?P<gap>[\d.]+) above pos\)",
    re.MULTILINE,
)


def _on_the_ground(text: str) -> dict[str, dict[str, float]]:
    """The standing section's bodies on the ground: name -> load [N], pos z, com z and how far com is above pos [m]."""
    found = {}
    for match in ON_THE_GROUND.finditer(text):
        for name in match["names"].split(", "):
            found[name.removeprefix("bodies.")] = {k: float(match[k]) for k in ("load", "pos", "com", "gap")}
    return found


def _model(task) -> mujoco.MjModel:
    env = make_env(task)
    env.close()
    return env.unwrapped.model


def _mass_and_weight(model: mujoco.MjModel) -> tuple[float, float]:
    """The mass of the bodies that move (in these models, every body but the world) and its weight."""
    mass = mujoco.mj_getTotalmass(model)
    return mass, mass * float(np.linalg.norm(model.opt.gravity))


@pytest.mark.parametrize("task_id, feet", [("walker_forward", ("foot", "foot_left")), ("hopper_forward", ("foot",))])
def test_a_legged_robot_is_told_where_each_foot_stands_and_what_it_carries(task_id, feet):
    task = find_task(task_id)
    text, model = describe_task(task), _model(task)
    mass, weight = _mass_and_weight(model)
    assert f"total mass {mass:.3g} kg, weight {weight:.3g} N" in text
    standing = _on_the_ground(text)
    assert set(standing) == set(feet) and "Nothing else touches the ground" in text
    for name, foot in standing.items():
        assert abs(foot["load"] - weight / len(feet)) <= 0.2 * weight / len(feet)
        # The foot's capsule rests on the ground: its centre a hair under its radius up, while the body's
        # frame origin, what `pos` reads, lies below the ground; the gap is said.
        radius = model.geom_size[model.body_geomadr[model.body(name).id], 0]
        assert radius - 0.005 < foot["com"] < radius and foot["pos"] < 0
        assert abs(foot["gap"] - (foot["com"] - foot["pos"])) <= 0.0015
    assert abs(sum(f["load"] for f in standing.values()) - weight) <= 0.1 * weight
    assert "bodies.torso: pos z 1.2" in text  # the root, a little lower than its 1.25 m at the start


@pytest.mark.parametrize("task_id", ["reacher_reach", "inverted_double_pendulum_balance"])
def test_a_model_where_nothing_touches_the_ground_says_so(task_id):
    task = find_task(task_id)
    text = describe_task(task)
    mass, _ = _mass_and_weight(_model(task))
    assert f"# Nothing touches the ground in 2 s of zero action from the start pose; total mass {mass:.3g} kg." in text
    assert not _on_the_ground(text) and "Standing" not in text


def test_a_robot_that_falls_at_zero_action_is_told_what_touched_the_ground_first():
    text = describe_task(find_task("humanoid_forward"))
    assert "it does not stand: it comes to rest after" in text and "Standing" not in text
    first = next(line for line in text.splitlines() if line.startswith("#   First to touch the ground"))
    assert "bodies.right_foot" in first and "bodies.left_foot" in first and "torso" not in first


# A sled on two feet across its length, the front one nearer its centre of mass, so it carries more.
SLED_XML = """
<mujoco><option timestep="0.01"/>
  <worldbody><geom name="floor" type="plane" size="5 5 0.1"/>
    <body name="sled" pos="0 0 0.08"><freejoint name="free"/>
      <geom type="box" size="0.3 0.1 0.02" mass="{mass}" contype="0" conaffinity="0"/>
      <body name="front" pos="0.1 0 -0.05"><geom type="capsule" fromto="0 -0.1 0 0 0.1 0" size="0.02" mass="0.5"/></body>
      <body name="back" pos="-0.2 0 -0.05"><geom type="capsule" fromto="0 -0.1 0 0 0.1 0" size="0.02" mass="0.5"/></body>
    </body></worldbody>
</mujoco>
"""


class SledEnv(MujocoEnv, utils.EzPickle):
    """A sled that only rests where it lands: no actuators, never ends early."""

    metadata = DropEnv.metadata

    def __init__(self, xml_file: str, **kwargs):
        utils.EzPickle.__init__(self, xml_file, **kwargs)
        space = Box(-np.inf, np.inf, shape=(13,), dtype=np.float64)
        MujocoEnv.__init__(self, xml_file, 4, observation_space=space, **kwargs)

    def step(self, action):
        self.do_simulation(action, self.frame_skip)
        return self._get_obs(), 0.0, False, False, {}

    def _get_obs(self):
        return np.concatenate([self.data.qpos, self.data.qvel])

    def reset_model(self):
        self.set_state(self.init_qpos, self.init_qvel)
        return self._get_obs()


def test_a_model_of_ones_own_is_told_how_it_stands_measured_once_per_model(tmp_path, monkeypatch):
    model_file = tmp_path / "sled.xml"
    model_file.write_text(SLED_XML.format(mass=2))
    if "SledTest-v0" not in registry:
        register(id="SledTest-v0", entry_point=SledEnv, max_episode_steps=50)
    monkeypatch.setenv(episodes.CACHE_VARIABLE, str(tmp_path / "cache"))
    measured = []
    measure = episodes.measure_standing
    monkeypatch.setattr(episodes, "measure_standing", lambda *a: measured.append(a) or measure(*a))
    task = parse_task(
        f'id = "sled"\nenv = "SledTest-v0"\ndescription = "rest"\n[env_kwargs]\nxml_file = "{model_file}"\n',
        "sled.toml",
    )
    text = describe_task(task)
    weight = 3 * 9.81
    # Statics: the centre of mass is at x = (0.5 * 0.1 - 0.5 * 0.2) / 3, the feet at 0.1 and -0.2.
    centre = (0.5 * 0.1 - 0.5 * 0.2) / 3
    shares = {"front": (centre + 0.2) / 0.3, "back": (0.1 - centre) / 0.3}
    standing = _on_the_ground(text)
    assert set(standing) == {"front", "back"} and "total mass 3 kg, weight 29.4 N" in text
    for name, share in shares.items():
        assert abs(standing[name]["load"] - share * weight) <= 0.1 * share * weight, name
        assert abs(standing[name]["com"] - 0.02) < 0.003  # the capsule's radius: its centre, resting on the floor
    assert describe_task(task) == text and len(measured) == 1  # cached
    model_file.write_text(SLED_XML.format(mass=4))  # an edited robot is measured anew
    assert "total mass 5 kg" in describe_task(task) and len(measured) == 2


def test_the_first_designer_prompt_says_how_the_policy_will_be_trained(tmp_path):
    store = make_run(tmp_path / "runs", feedback="fitness")  # half_cheetah_backward, 512 steps, PPO
    (tmp_path / "replies.jsonl").write_text("")
    loop = DesignLoop(store, ReplayLLM(tmp_path / "replies.jsonl"), Prompts(), tmp_path / "runs", Runner.connect())
    system = loop.designer.first_messages(loop.brief(None, None, describe_task(store.config().task)))[0].content
    assert "PPO (stable-baselines3) for 512 environment steps in all, 4 environments stepped together" in system
    assert "episodes of at most 1000 steps, discount 0.99" in system
    assert "normalized by a running estimate of the return's scale (VecNormalize)" in system
    assert "# When an episode ends: never early" in system  # the State's facts reach it too
    sac = TrainingConfig.from_budget(Budget(algo="sac", steps=1000))
    assert "learns from the raw rewards, with no normalization" in describe_training(sac, 1000)
