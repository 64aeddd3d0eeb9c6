"""The point-goal environment: push a point mass (two slide joints) to a fixed goal on the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.spaces import Box

MODEL = Path(__file__).with_name("point_goal.xml")


class PointGoalEnv(MujocoEnv, utils.EzPickle):
    """Observation: the point's position and velocity, and the goal's offset from it. Reward: minus the distance."""

    metadata = {"render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"], "render_fps": 20}

    def __init__(self, xml_file: str = str(MODEL), frame_skip: int = 5, reset_noise_scale: float = 0.1, **kwargs):
        utils.EzPickle.__init__(self, xml_file, frame_skip, reset_noise_scale, **kwargs)
        self._reset_noise_scale = reset_noise_scale
        observation_space = Box(low=-np.inf, high=np.inf, shape=(6,), dtype=np.float64)
        MujocoEnv.__init__(self, xml_file, frame_skip, observation_space=observation_space, **kwargs)
        self.metadata["render_fps"] = int(np.round(1.0 / self.dt))

    def _offset(self) -> np.ndarray:
        return self.data.body("goal").xpos[:2] - self.data.body("point").xpos[:2]

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel, self._offset()])

    def step(self, action):
        self.do_simulation(action, self.frame_skip)
        distance = float(np.linalg.norm(self._offset()))
        return self._get_obs(), -distance, False, False, {"distance": distance}

    def reset_model(self):
        noise = self._reset_noise_scale
        qpos = self.init_qpos + self.np_random.uniform(-noise, noise, size=self.model.nq)
        self.set_state(qpos, self.init_qvel)
        return self._get_obs()
