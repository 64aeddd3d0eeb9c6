"""Environments whose reward comes from a reward program, for a whole batch at once.

`make_vec_env` builds N gymnasium environments of a task in a
`CapturingVecEnv`: SB3's `DummyVecEnv`, which also copies each simulation into
one row of a batch of raw arrays right after that environment's step, before
SB3's auto-reset can overwrite a terminal state. `RewardVecEnv` then builds
`state` and `next_state` for all N environments from those arrays, calls the
reward once per batch, and keeps per-episode books: fitness, length, the
environment's own return and each reward component's return.

Copying MjData (eleven arrays per environment and step) is much of the reward
path's cost, so only the raw arrays that the reward, the fitness and the
observers read in the first step are copied after it; the others hold NaN. Should one of them be read later (a reward that reads
a field only in some states), that step's values are set to 0 with a warning,
and every field is copied from then on.
"""

from __future__ import annotations

import warnings
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper

from autoreward.config import RewardSource, Simulator, Task
from autoreward.errors import UnsupportedSimulatorError
from autoreward.records import ComponentStats, EpisodeResult
from autoreward.sim.observation_state import ObservationLayout, state_layout
from autoreward.sim.reward_forms import FormReward
from autoreward.sim.state import StateLayout, read_only
from autoreward.task.files import make_env
from autoreward.task.fitness import FitnessMeter

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

    def __init__(self, env_fns: list[Callable], layout: StateLayout | ObservationLayout):
        super().__init__(env_fns)
        self.layout = layout
        self.before = layout.allocate(self.num_envs)
        self.after = layout.allocate(self.num_envs)
        self.reset_rows: list[int] = []  # rows whose episode ended in the last step, and were reset
        # What each row is copied from: a MuJoCo environment's MjData, or the recorder of an observation.
        self._datas = [layout.source(env) for env in self.envs]
        self.copy_fields(layout.shapes)

    def copy_fields(self, names) -> None:
        """Copy only the raw arrays `names` from now on, starting with this step's end.

        The others are filled with NaN, so a read of one gives NaN rather than stale values.
        The rows of `after` whose simulation was not reset are copied again with the new
        fields (their simulations still hold this step's end).
        """
        self.copied_fields = frozenset(names)
        for arrays in (self.before, self.after):
            for name, array in arrays.items():
                if name not in self.copied_fields:
                    array.fill(np.nan)

        def copiers(arrays: dict[str, np.ndarray]) -> list[Callable[[], None]]:
            return [self.layout.copier(data, arrays, row, names) for row, data in enumerate(self._datas)]

        # Copiers bound to one buffer each; they swap along with the buffers.
        self._copy_into_before, self._copy_into_after = copiers(self.before), copiers(self.after)
        for row, copy in enumerate(self._copy_into_after):
            if row not in self.reset_rows:
                copy()

    def step_wait(self):
        # SB3's DummyVecEnv.step_wait (stable-baselines3 2.x), plus the capture and a list of the rows reset.
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


class _FieldsRead(dict):
    """A buffer's raw arrays as a `State` reads them, noticing the first read of each field.

    It starts empty, so the first read of a field runs `__missing__`, which takes the array
    from the buffer, keeps it (later reads are plain dict lookups) and appends its name to
    `first_reads`.
    """

    def __init__(self, arrays: dict[str, np.ndarray], first_reads: list[str]):
        super().__init__()
        self._arrays = arrays
        self.first_reads = first_reads

    def __missing__(self, name: str) -> np.ndarray:
        array = self[name] = self._arrays[name]
        self.first_reads.append(name)
        return array


@dataclass
class WindowStats:
    """Per-step rewards since the last time they were taken; reduced only when read.

    Each step adds the table `RewardVecEnv` books it with (rows: the environment's own
    reward, the reward, then each component) and the names of its components.
    """

    tables: list[tuple[tuple[str, ...], np.ndarray]] = field(default_factory=list)
    episodes: list[EpisodeResult] = field(default_factory=list)

    def add(self, component_names: tuple[str, ...], table: np.ndarray) -> None:
        self.tables.append((component_names, table))

    @property
    def rewards(self) -> list[np.ndarray]:
        """Each step's rewards, shape (N,)."""
        return [table[1] for _, table in self.tables]

    @property
    def components(self) -> dict[str, list[np.ndarray]]:
        """Each component's values, step by step (the steps that returned it), shape (N,)."""
        components: dict[str, list[np.ndarray]] = {}
        for names, table in self.tables:
            for name, values in zip(names, table[2:]):
                components.setdefault(name, []).append(values)
        return components

    @property
    def steps(self) -> int:
        return sum(table.shape[1] for _, table in self.tables)

    @property
    def reward_sum(self) -> float:
        return float(np.sum(np.concatenate(self.rewards))) if self.tables else 0.0

    def component_stats(self) -> dict[str, ComponentStats]:
        stats = {}
        for name, chunks in self.components.items():
            values = np.concatenate(chunks)
            stats[name] = ComponentStats(mean=float(values.mean()), min=float(values.min()), max=float(values.max()))
        return stats


RewardFunction = Callable[..., tuple]


class RewardVecEnv(VecEnvWrapper):
    """Replaces the reward of a `CapturingVecEnv`, or of a `BatchedVecEnv` (batched_env.py), which
    keeps the same buffers (`layout`, `before`, `after`, `reset_rows`, `copy_fields`, `advance`).

    `reward_source` is "program" (call `reward_function` on the batch; a
    `reward_forms.FormReward` is also given the sparse reward and each finished
    episode's task score),
    "native" (keep the environment's own reward) or "sparse" (the task's
    fitness alone: each step's term, or for a `last` fitness the episode's
    final value on its last step).

    After the first step only the raw fields read in it are copied (see the
    module's docstring), unless `copy_all_fields`.
    """

    def __init__(
        self,
        venv,  # CapturingVecEnv or BatchedVecEnv
        task: Task,
        reward_source: RewardSource,
        reward_function: RewardFunction | None = None,
        copy_all_fields: bool = False,
    ):
        super().__init__(venv)
        if reward_source == "program" and reward_function is None:
            raise ValueError("reward_source 'program' needs a reward_function")
        self._form = reward_function if isinstance(reward_function, FormReward) else None
        if (reward_source == "sparse" or self._form is not None) and task.fitness is None:
            raise ValueError(f"task {task.id} has no fitness, so it has no sparse reward")
        self.layout = venv.layout
        self.task = task
        self.reward_source = reward_source
        self._reward_function = reward_function
        self._first_reads: list[str] = []  # fields read for the first time, by either State, since last looked at
        self._fields_read: set[str] = set()
        self._choosing_fields = not copy_all_fields  # until the first step has shown which fields are read
        # The buffers are filled in place and only swap roles, so one State per buffer serves every
        # step, and its named views (built on first access) are built once.
        self._states = {
            id(arrays): self.layout.state(arrays if copy_all_fields else _FieldsRead(arrays, self._first_reads))
            for arrays in (venv.before, venv.after)
        }
        self._meter = FitnessMeter(task.fitness, self.num_envs) if task.fitness else None
        self._actions: np.ndarray | None = None
        # A Discrete action reaches the reward as integers of shape (N,); a Box action as (N, k).
        discrete = isinstance(self.layout, ObservationLayout) and self.layout.discrete_actions
        self._action_shape = (self.num_envs,) if discrete else (self.num_envs, -1)
        # Episode lengths as differences of a step count: no array to update every step.
        self._steps = 0
        self._episode_start = np.zeros(self.num_envs, dtype=np.int64)
        # The running sums of each episode, one row per quantity: the environment's own reward, the reward,
        # then each component, in `_component_names` order. One in-place add per step updates them all.
        self._sums = np.zeros((2, self.num_envs))
        self._component_names: tuple[str, ...] = ()
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
        self._steps = 0
        self._episode_start[:] = 0
        self._sums = np.zeros((2, self.num_envs))
        self._component_names = ()
        if self._meter is not None:
            self._meter.finish(np.arange(self.num_envs))
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        # Keep the policy's dtype (float32): gymnasium's own rewards compute control costs in it.
        self._actions = np.asarray(actions).reshape(self._action_shape)
        self.venv.step_async(actions)

    def step_wait(self):
        venv = self.venv
        observations, native, dones, infos = venv.step_wait()
        state = self._states[id(venv.before)]
        next_state = self._states[id(venv.after)]
        actions = read_only(self._actions)  # what the policy did; a reward program may not rewrite it
        fitness_terms = None
        if self._meter is not None:
            fitness_terms = self._meter.step_values(state, actions, next_state)

        if self._form is not None:  # a progress or latent program: the task's sparse reward and episodes too
            total, components = self._form(state, actions, next_state, self._sparse_rewards(fitness_terms, dones))
        elif self.reward_source == "program":
            total, components = self._reward_function(state, actions, next_state)
        elif self.reward_source == "native":
            total = native
            components = {"native": native}
        else:
            total = self._sparse_rewards(fitness_terms, dones)
            components = {"fitness": total}
        component_names = tuple(components)
        # This step's table: rows as in `_sums`; assigning a row converts to float64 (and broadcasts a scalar).
        table = np.empty((2 + len(component_names), self.num_envs))
        table[0] = native
        table[1] = total
        for row, values in enumerate(components.values(), 2):
            table[row] = values
        for observe in self.observers:
            observe(state, actions, next_state)
        if (self._first_reads or self._choosing_fields) and self._read_fields_not_copied():
            # This step read NaN where it expected the simulation: its values are lost (its start was not copied).
            if self.reward_source != "native":  # the environment's own reward does not come from the state
                table[1:] = 0.0
            if fitness_terms is not None:
                fitness_terms = np.zeros(self.num_envs)

        if self._meter is not None:
            self._meter.add(fitness_terms)
        self._steps += 1
        self._add_to_sums(component_names, table)
        self.window.add(component_names, table)
        if venv.reset_rows:
            self._finish_episodes(venv.reset_rows, infos)
        venv.advance()
        return observations, table[1].astype(np.float32), dones, infos

    def _read_fields_not_copied(self) -> bool:
        """After the first step, copy only the fields it read; later, were fields read for the first time copied?"""
        new = set(self._first_reads) - self._fields_read
        self._first_reads.clear()
        self._fields_read |= new
        if self._choosing_fields:  # the first step, with every field copied
            self._choosing_fields = False
            self.venv.copy_fields(self._fields_read)
            return False
        missed = sorted(new - self.venv.copied_fields)
        if not missed:
            return False
        warnings.warn(
            f"the reward path read {', '.join(missed)} for the first time after the first step, when only the "
            "fields read in the first step were copied; this step's reward, components and fitness term are set "
            "to 0, and every field is copied from now on",
            RuntimeWarning,
        )
        self.venv.copy_fields(self.layout.shapes)
        return True

    def _add_to_sums(self, component_names: tuple[str, ...], table: np.ndarray) -> None:
        if component_names == self._component_names:
            self._sums += table
            return
        # The first step, or a reward whose components changed: give each new component a row.
        new = tuple(name for name in component_names if name not in self._component_names)
        if new:
            self._component_names += new
            self._sums = np.vstack([self._sums, np.zeros((len(new), self.num_envs))])
        rows = [0, 1] + [2 + self._component_names.index(name) for name in component_names]
        self._sums[rows] += table

    def _score_sign(self) -> float:
        """+1 where a higher task score is better, else -1: what makes the task score a reward to maximize."""
        return 1.0 if self.task.fitness.higher_is_better else -1.0

    def _sparse_rewards(self, fitness_terms: np.ndarray, dones: np.ndarray) -> np.ndarray:
        sign = self._score_sign()
        if self.task.fitness.reduce == "last":
            return sign * np.where(dones, fitness_terms, 0.0)
        return sign * fitness_terms

    def _finish_episodes(self, rows: list[int], infos: list[dict]) -> None:
        fitness = self._meter.finish(rows).tolist() if self._meter is not None else [None] * len(rows)
        if self._form is not None:
            self._form.episodes_ended(rows, [self._score_sign() * value for value in fitness])
        lengths = (self._steps - self._episode_start[rows]).tolist()
        sums = self._sums[:, rows].T.tolist()
        for row, length, value, (native_return, reward_return, *component_returns) in zip(rows, lengths, fitness, sums):
            episode = EpisodeResult(
                seed=-1,
                length=length,
                fitness=value,
                native_return=native_return,
                reward_return=reward_return,
                component_returns=dict(zip(self._component_names, component_returns)),
                terminated=not infos[row].get("TimeLimit.truncated", False),
            )
            infos[row][EPISODE_INFO_KEY] = episode
            self.window.episodes.append(episode)
        self._episode_start[rows] = self._steps
        self._sums[:, rows] = 0.0


def make_vec_env(
    task: Task,
    n_envs: int,
    seed: int,
    reward_source: RewardSource,
    reward_function: RewardFunction | None = None,
    render_mode: str | None = None,
    copy_all_fields: bool = False,
    simulator: Simulator = "gymnasium",
    device: str = "cpu",
) -> RewardVecEnv:
    """N environments of `task` stepped together, rewarded by `reward_source`.

    `copy_all_fields` copies every field at every step, for exact results whatever is read when (evaluation);
    otherwise only the fields read in the first step are copied after it (see the module's docstring).
    `simulator`: "gymnasium" (N gymnasium environments in a `CapturingVecEnv`), "batched" (one batch on
    the CPU, `batched_env.BatchedVecEnv`) or "warp" (MuJoCo Warp worlds on `device`). A task the batched
    simulators cannot run falls back to gymnasium with a warning that says why.
    """
    if simulator != "gymnasium":
        from autoreward.sim.batched_env import make_batched_env

        if render_mode is not None:
            warnings.warn(f"the {simulator} simulator does not render; using gymnasium environments", RuntimeWarning)
        else:
            try:
                batched = make_batched_env(task, n_envs, simulator, device)
            except UnsupportedSimulatorError as error:
                warnings.warn(f"{error}; using gymnasium environments instead", RuntimeWarning, stacklevel=2)
            else:
                batched.seed(seed)
                return RewardVecEnv(batched, task, reward_source, reward_function, copy_all_fields)
    probe = make_env(task)
    layout = state_layout(probe, extras=task.extras)
    probe.close()
    venv = CapturingVecEnv([lambda: layout.wrap(make_env(task, render_mode)) for _ in range(n_envs)], layout)
    venv.seed(seed)
    return RewardVecEnv(venv, task, reward_source, reward_function, copy_all_fields)
