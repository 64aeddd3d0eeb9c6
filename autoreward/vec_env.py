"""Environments whose reward comes from a reward program, for a whole batch at once.

`make_vec_env` builds N gymnasium environments of a task, each wrapped in
`StateCapture`, which copies the simulation into one row of shared batch
buffers after every reset and step — before SB3's auto-reset can overwrite
a terminal state. `RewardVecEnv` then builds `state` and `next_state` for
all N environments from those buffers, calls the reward once per batch,
and keeps per-episode books: fitness, length, the environment's own return
and each reward component's return.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

from .errors import UnsupportedSimulatorError
from .fitness import FitnessMeter
from .records import ComponentStats, EpisodeResult, RewardSource, Simulator, Task
from .state import StateLayout
from .tasks import make_env

EPISODE_INFO_KEY = "autoreward_episode"


class StateBuffers:
    """The raw State arrays a vector of environments fills (`StateCapture` row by row, `BatchedVecEnv`
    at once): after each step, and after resets. `RewardVecEnv` swaps `before` and `after` after each step."""

    def __init__(self, layout: StateLayout, n: int):
        self.before = layout.allocate(n)
        self.after = layout.allocate(n)
        self.reset = layout.allocate(n)


class StateCapture(gym.Wrapper):
    """Copies its simulation into row `row` of shared buffers after every reset and step."""

    def __init__(self, env: gym.Env, layout: StateLayout, buffers: StateBuffers, row: int):
        super().__init__(env)
        self._buffers = buffers
        data = env.unwrapped.data
        # One bound copier per buffer: `before` and `after` swap every step, so look up by identity.
        self._copiers = {
            id(arrays): layout.copier(data, arrays, row) for arrays in (buffers.before, buffers.after, buffers.reset)
        }

    def reset(self, **kwargs):
        result = self.env.reset(**kwargs)
        self._copiers[id(self._buffers.reset)]()
        return result

    def step(self, action):
        result = self.env.step(action)
        self._copiers[id(self._buffers.after)]()
        return result


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
    """Replaces the reward of a vector of environments that fills `buffers`: a `DummyVecEnv` of
    `StateCapture`-wrapped environments, or a `BatchedVecEnv`.

    `reward_source` is "program" (call `reward_function` on the batch),
    "native" (keep the environment's own reward) or "sparse" (the task's
    fitness alone: each step's term, or for a `last` fitness the episode's
    final value on its last step).
    """

    def __init__(
        self,
        venv: VecEnv,
        layout: StateLayout,
        buffers: StateBuffers,
        task: Task,
        reward_source: RewardSource,
        reward_function: RewardFunction | None = None,
    ):
        super().__init__(venv)
        if reward_source == "program" and reward_function is None:
            raise ValueError("reward_source 'program' needs a reward_function")
        if reward_source == "sparse" and task.fitness is None:
            raise ValueError(f"task {task.id} has no fitness, so it has no sparse reward")
        self.layout = layout
        self.task = task
        self.reward_source = reward_source
        self._reward_function = reward_function
        self._buffers = buffers
        # The buffers are filled in place and only swap roles, so one State per buffer serves every
        # step, and its named views (built on first access) are built once.
        self._states = {id(arrays): layout.state(arrays) for arrays in (buffers.before, buffers.after)}
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
        for name, array in self._buffers.reset.items():
            self._buffers.before[name][:] = array
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
        observations, native, dones, infos = self.venv.step_wait()
        state = self._states[id(self._buffers.before)]
        next_state = self._states[id(self._buffers.after)]
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

        done_rows = np.flatnonzero(dones)
        if done_rows.size:
            self._finish_episodes(done_rows, infos)
        # The next step starts from this one's end, except where an episode ended and reset.
        buffers = self._buffers
        buffers.before, buffers.after = buffers.after, buffers.before
        if done_rows.size:
            for name, array in buffers.reset.items():
                buffers.before[name][done_rows] = array[done_rows]
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
    simulator: Simulator = "gymnasium",
    device: str = "cpu",
) -> RewardVecEnv:
    """N environments of `task` stepped together, rewarded by `reward_source`.

    `simulator`: "gymnasium" (N gymnasium environments in a DummyVecEnv),
    "batched" (one batch on the CPU, `batched_env.BatchedVecEnv`) or "warp"
    (MuJoCo Warp worlds on `device`). A task the batched simulators cannot
    run falls back to gymnasium with a warning that says why.
    """
    if simulator != "gymnasium":
        from .batched_env import make_batched_env

        if render_mode is not None:
            warnings.warn(f"the {simulator} simulator does not render; using gymnasium environments", RuntimeWarning)
        else:
            try:
                venv = make_batched_env(task, n_envs, simulator, device)
            except UnsupportedSimulatorError as error:
                warnings.warn(f"{error}; using gymnasium environments instead", RuntimeWarning, stacklevel=2)
            else:
                venv.seed(seed)
                return RewardVecEnv(venv, venv.layout, venv.buffers, task, reward_source, reward_function)
    probe = make_env(task)
    layout = StateLayout.from_env(probe, extras=task.extras)
    probe.close()
    buffers = StateBuffers(layout, n_envs)

    def factory(row: int):
        return lambda: StateCapture(make_env(task, render_mode), layout, buffers, row)

    venv = DummyVecEnv([factory(row) for row in range(n_envs)])
    venv.seed(seed)
    return RewardVecEnv(venv, layout, buffers, task, reward_source, reward_function)
