"""Environments whose reward comes from a reward program, for a whole batch at once.

`make_vec_env` builds N gymnasium environments of a task in a
`CapturingVecEnv`: SB3's `DummyVecEnv`, which also copies each simulation into
one row of a batch of raw arrays right after that environment's step, before
SB3's auto-reset can overwrite a terminal state. `RewardVecEnv` then builds
`state` and `next_state` for all N environments from those arrays, calls the
reward once per batch, and keeps per-episode books: fitness, length, the
environment's own return and each reward component's return.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper

from .fitness import FitnessMeter
from .records import ComponentStats, EpisodeResult, RewardSource, Task
from .state import StateLayout
from .tasks import make_env

EPISODE_INFO_KEY = "autoreward_episode"


class CapturingVecEnv(DummyVecEnv):
    """SB3's `DummyVecEnv` that copies every simulation into a batch of raw arrays as it steps.

    `before` holds each simulation at the start of the current step and `after` at its end.
    Row i of `after` is written inside the step loop, right after environment i's step and
    before SB3 resets an environment whose episode ended, so it holds the true terminal
    state. `advance` then makes this step's end the next step's start: the two buffers swap
    roles (nothing is copied), and each row that was reset gets its reset state, copied from
    its simulation, which has not moved since the reset.
    """

    def __init__(self, env_fns: list[Callable], layout: StateLayout):
        super().__init__(env_fns)
        self.layout = layout
        self.before = layout.allocate(self.num_envs)
        self.after = layout.allocate(self.num_envs)
        self.reset_rows: list[int] = []  # rows whose episode ended in the last step, and were reset
        datas = [env.unwrapped.data for env in self.envs]
        # Copiers bound to one buffer each; they swap along with the buffers.
        self._copy_into_before = [layout.copier(data, self.before, row) for row, data in enumerate(datas)]
        self._copy_into_after = [layout.copier(data, self.after, row) for row, data in enumerate(datas)]

    def step_wait(self):
        # SB3's DummyVecEnv.step_wait (stable-baselines3 2.x), plus one line: the capture.
        copy_into_after = self._copy_into_after
        reset_rows = self.reset_rows = []
        for env_idx in range(self.num_envs):
            obs, self.buf_rews[env_idx], terminated, truncated, self.buf_infos[env_idx] = self.envs[env_idx].step(
                self.actions[env_idx]
            )
            copy_into_after[env_idx]()  # before the reset below: this is the terminal state if the episode ended
            self.buf_dones[env_idx] = terminated or truncated
            self.buf_infos[env_idx]["TimeLimit.truncated"] = truncated and not terminated
            if self.buf_dones[env_idx]:
                self.buf_infos[env_idx]["terminal_observation"] = obs
                obs, self.reset_infos[env_idx] = self.envs[env_idx].reset()
                reset_rows.append(env_idx)
            self._save_obs(env_idx, obs)
        return (self._obs_from_buf(), np.copy(self.buf_rews), np.copy(self.buf_dones), deepcopy(self.buf_infos))

    def reset(self):
        observations = super().reset()
        for copy in self._copy_into_before:
            copy()
        self.reset_rows = []
        return observations

    def advance(self) -> None:
        """Make the end of the last step the start of the next."""
        self.before, self.after = self.after, self.before
        self._copy_into_before, self._copy_into_after = self._copy_into_after, self._copy_into_before
        for row in self.reset_rows:
            self._copy_into_before[row]()


@dataclass
class WindowStats:
    """Per-step rewards since the last time they were taken; reduced only when read."""

    rewards: list[np.ndarray] = field(default_factory=list)
    components: dict[str, list[np.ndarray]] = field(default_factory=dict)
    episodes: list[EpisodeResult] = field(default_factory=list)

    def add(self, reward: np.ndarray, components: dict[str, np.ndarray]) -> None:
        self.rewards.append(reward)
        for name, values in components.items():
            self.components.setdefault(name, []).append(values)

    @property
    def steps(self) -> int:
        return sum(r.shape[0] for r in self.rewards)

    @property
    def reward_sum(self) -> float:
        return float(np.sum(np.concatenate(self.rewards))) if self.rewards else 0.0

    def component_stats(self) -> dict[str, ComponentStats]:
        stats = {}
        for name, chunks in self.components.items():
            values = np.concatenate(chunks)
            stats[name] = ComponentStats(mean=float(values.mean()), min=float(values.min()), max=float(values.max()))
        return stats


RewardFunction = Callable[..., tuple]


class RewardVecEnv(VecEnvWrapper):
    """Replaces the reward of a `CapturingVecEnv`.

    `reward_source` is "program" (call `reward_function` on the batch),
    "native" (keep the environment's own reward) or "sparse" (the task's
    fitness alone: each step's term, or for a `last` fitness the episode's
    final value on its last step).
    """

    def __init__(
        self,
        venv: CapturingVecEnv,
        task: Task,
        reward_source: RewardSource,
        reward_function: RewardFunction | None = None,
    ):
        super().__init__(venv)
        if reward_source == "program" and reward_function is None:
            raise ValueError("reward_source 'program' needs a reward_function")
        if reward_source == "sparse" and task.fitness is None:
            raise ValueError(f"task {task.id} has no fitness, so it has no sparse reward")
        self.layout = venv.layout
        self.task = task
        self.reward_source = reward_source
        self._reward_function = reward_function
        # The buffers are filled in place and only swap roles, so one State per buffer serves every
        # step, and its named views (built on first access) are built once.
        self._states = {id(arrays): self.layout.state(arrays) for arrays in (venv.before, venv.after)}
        self._meter = FitnessMeter(task.fitness, self.num_envs) if task.fitness else None
        self._actions: np.ndarray | None = None
        n = self.num_envs
        self._length = np.zeros(n, dtype=np.int64)
        self._native_return = np.zeros(n)
        self._reward_return = np.zeros(n)
        self._component_returns: dict[str, np.ndarray] = {}
        self._episode_seeds = [None] * n
        self.window = WindowStats()
        # Called with (state, action, next_state) after every step, e.g. to record trajectories.
        self.observers: list[Callable[..., None]] = []

    def take_window(self) -> WindowStats:
        window, self.window = self.window, WindowStats()
        return window

    def running_fitness(self) -> np.ndarray | None:
        return None if self._meter is None else self._meter.running()

    def reset(self):
        observations = self.venv.reset()
        self._length[:] = 0
        self._native_return[:] = 0
        self._reward_return[:] = 0
        self._component_returns = {}
        if self._meter is not None:
            self._meter.finish(np.arange(self.num_envs))
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        # Keep the policy's dtype (float32): gymnasium's own rewards compute control costs in it.
        self._actions = np.asarray(actions).reshape(self.num_envs, -1)
        self.venv.step_async(actions)

    def step_wait(self):
        venv = self.venv
        observations, native, dones, infos = venv.step_wait()
        state = self._states[id(venv.before)]
        next_state = self._states[id(venv.after)]
        fitness_terms = None
        if self._meter is not None:
            fitness_terms = self._meter.step_values(state, self._actions, next_state)
            self._meter.add(fitness_terms)

        if self.reward_source == "program":
            total, components = self._reward_function(state, self._actions, next_state)
            rewards = np.asarray(total, dtype=np.float64)
            components = {k: np.asarray(v, dtype=np.float64) for k, v in components.items()}
        elif self.reward_source == "native":
            rewards = np.asarray(native, dtype=np.float64)
            components = {"native": rewards}
        else:
            rewards = self._sparse_rewards(fitness_terms, dones)
            components = {"fitness": rewards}

        self._length += 1
        self._native_return += native
        self._reward_return += rewards
        for name, values in components.items():
            self._component_returns.setdefault(name, np.zeros(self.num_envs))
            self._component_returns[name] += values
        self.window.add(rewards, components)
        for observe in self.observers:
            observe(state, self._actions, next_state)

        if venv.reset_rows:
            self._finish_episodes(np.array(venv.reset_rows), infos)
        venv.advance()
        return observations, rewards.astype(np.float32), dones, infos

    def _sparse_rewards(self, fitness_terms: np.ndarray, dones: np.ndarray) -> np.ndarray:
        sign = 1.0 if self.task.fitness.higher_is_better else -1.0
        if self.task.fitness.reduce == "last":
            return sign * np.where(dones, fitness_terms, 0.0)
        return sign * fitness_terms

    def _finish_episodes(self, rows: np.ndarray, infos: list[dict]) -> None:
        fitness = self._meter.finish(rows) if self._meter is not None else [None] * len(rows)
        for row, value in zip(rows, fitness):
            episode = EpisodeResult(
                seed=-1,
                length=int(self._length[row]),
                fitness=None if value is None else float(value),
                native_return=float(self._native_return[row]),
                reward_return=float(self._reward_return[row]),
                component_returns={k: float(v[row]) for k, v in self._component_returns.items()},
                terminated=not infos[row].get("TimeLimit.truncated", False),
            )
            infos[row][EPISODE_INFO_KEY] = episode
            self.window.episodes.append(episode)
            self._length[row] = 0
            self._native_return[row] = 0.0
            self._reward_return[row] = 0.0
            for values in self._component_returns.values():
                values[row] = 0.0


def make_vec_env(
    task: Task,
    n_envs: int,
    seed: int,
    reward_source: RewardSource,
    reward_function: RewardFunction | None = None,
    render_mode: str | None = None,
) -> RewardVecEnv:
    """N environments of `task` stepped together, rewarded by `reward_source`."""
    probe = make_env(task)
    layout = StateLayout.from_env(probe, extras=task.extras)
    probe.close()
    venv = CapturingVecEnv([lambda: make_env(task, render_mode) for _ in range(n_envs)], layout)
    venv.seed(seed)
    return RewardVecEnv(venv, task, reward_source, reward_function)
