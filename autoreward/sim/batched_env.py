"""A task's N environments as one batch: a physics backend and gymnasium's semantics in numpy.

`BatchedVecEnv` is an SB3 vector environment that does what a `DummyVecEnv`
of N gymnasium MuJoCo environments does, for the whole batch at once: it
steps a `Physics` backend (N `MjData` on the CPU, or N MuJoCo Warp worlds),
then computes observations, terminations, time-limit truncations and the
environment's own reward over the batch, and resets finished environments
with the environment's reset noise. It fills the same raw State buffers as
`vec_env.CapturingVecEnv` does, so `RewardVecEnv` runs on top of it unchanged.

The environment's semantics are written here once per environment
(`SEMANTICS`), reading every parameter (reset noise, healthy ranges, ...)
from the gymnasium environment itself; its own reward is the task contract's
reproduction of it, the reward program in `envs/rewards/<env>_v5.py`.
Environments not in `SEMANTICS`, or built with `env_kwargs`, are refused
with `UnsupportedSimulatorError`, and `make_vec_env` falls back to gymnasium.

Seeding follows `DummyVecEnv`: `seed(s)` gives environment i the generator
gymnasium would give it for seed s + i, and the same draws are made in the
same order, so with the CPU backend a batched run and a gymnasium run of one
seed are the same trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from autoreward.config import Task
from autoreward.errors import UnsupportedSimulatorError
from autoreward.resources import data_dir
from autoreward.sim.physics import MujocoPhysics, Physics, WarpPhysics
from autoreward.sim.state import StateLayout

Arrays = dict[str, np.ndarray]


# --- each environment's semantics, over a batch --------------------------------------


@dataclass(frozen=True)
class EnvSemantics:
    """What a gymnasium MuJoCo environment does around its physics, written over a batch.

    `observe(arrays, p)` and `healthy(arrays, p)` read the batch's MjData
    arrays and `p`, the environment's parameters (its attributes named in
    `params`, read from the gymnasium environment, and "body": the model's
    body ids by name); `healthy` is None for an environment that never
    terminates. `reset(rng, p)` is its `reset_model` for one environment: the
    joint positions and velocities it draws from `rng`, in gymnasium's order,
    around `p["init_qpos"]` and `p["init_qvel"]`. `fields`: MjData arrays the
    observation needs beyond the State's.
    """

    native_reward: str
    observe: Callable[[Arrays, dict], np.ndarray]
    healthy: Callable[[Arrays, dict], np.ndarray] | None
    reset: Callable[[np.random.Generator, dict], tuple[np.ndarray, np.ndarray]]
    params: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()


def _noisy_reset(qvel_noise: str) -> Callable[[np.random.Generator, dict], tuple[np.ndarray, np.ndarray]]:
    """The locomotion environments' reset_model: uniform noise on positions; on velocities, `qvel_noise`."""

    def reset(rng: np.random.Generator, p: dict) -> tuple[np.ndarray, np.ndarray]:
        noise, init_qpos, init_qvel = p["_reset_noise_scale"], p["init_qpos"], p["init_qvel"]
        qpos = init_qpos + rng.uniform(low=-noise, high=noise, size=len(init_qpos))
        if qvel_noise == "normal":
            return qpos, init_qvel + noise * rng.standard_normal(len(init_qvel))
        return qpos, init_qvel + rng.uniform(low=-noise, high=noise, size=len(init_qvel))

    return reset


def _reacher_reset(rng: np.random.Generator, p: dict) -> tuple[np.ndarray, np.ndarray]:
    # Reacher.reset_model: the arm's angles jittered, a goal drawn in a disc of radius 0.2 (rejection
    # sampling, so the number of draws varies), the arm's velocities jittered and the target's zero.
    qpos = rng.uniform(low=-0.1, high=0.1, size=len(p["init_qpos"])) + p["init_qpos"]
    while True:
        goal = rng.uniform(low=-0.2, high=0.2, size=2)
        if np.linalg.norm(goal) < 0.2:
            break
    qpos[-2:] = goal
    qvel = p["init_qvel"] + rng.uniform(low=-0.005, high=0.005, size=len(p["init_qvel"]))
    qvel[-2:] = 0
    return qpos, qvel


def _pusher_reset(rng: np.random.Generator, p: dict) -> tuple[np.ndarray, np.ndarray]:
    # Pusher.reset_model: the arm at its initial pose, the object placed more than 0.17 from the goal
    # at the origin (rejection sampling), the arm's velocities jittered and the object's and goal's zero.
    qpos = p["init_qpos"].copy()
    while True:
        cylinder = np.concatenate([rng.uniform(low=-0.3, high=0, size=1), rng.uniform(low=-0.2, high=0.2, size=1)])
        if np.linalg.norm(cylinder) > 0.17:
            break
    qpos[-4:-2] = cylinder
    qpos[-2:] = 0
    qvel = p["init_qvel"] + rng.uniform(low=-0.005, high=0.005, size=len(p["init_qvel"]))
    qvel[-4:] = 0
    return qpos, qvel


def _positions(arrays: Arrays, p: dict, skip: int) -> np.ndarray:
    return arrays["qpos"][:, skip:] if p["_exclude_current_positions_from_observation"] else arrays["qpos"]


def _between(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return (bounds[0] < values) & (values < bounds[1])


def _hopper_healthy(a: Arrays, p: dict) -> np.ndarray:
    # Hopper.is_healthy: strict bounds; the state check covers state_vector()[2:].
    rest = np.concatenate([a["qpos"][:, 2:], a["qvel"]], axis=1)
    low, high = p["_healthy_state_range"]
    return (
        np.all((low < rest) & (rest < high), axis=1)
        & _between(a["qpos"][:, 1], p["_healthy_z_range"])
        & _between(a["qpos"][:, 2], p["_healthy_angle_range"])
    )


def _walker_healthy(a: Arrays, p: dict) -> np.ndarray:
    return _between(a["qpos"][:, 1], p["_healthy_z_range"]) & _between(a["qpos"][:, 2], p["_healthy_angle_range"])


def _ant_healthy(a: Arrays, p: dict) -> np.ndarray:
    # Ant.is_healthy: a finite state and the torso height within the range, bounds included.
    low, high = p["_healthy_z_range"]
    finite = np.all(np.isfinite(a["qpos"]), axis=1) & np.all(np.isfinite(a["qvel"]), axis=1)
    return finite & (low <= a["qpos"][:, 2]) & (a["qpos"][:, 2] <= high)


def _ant_observe(a: Arrays, p: dict) -> np.ndarray:
    parts = [_positions(a, p, 2), a["qvel"]]
    if p["_include_cfrc_ext_in_observation"]:
        low, high = p["_contact_force_range"]
        parts.append(np.clip(a["cfrc_ext"][:, 1:], low, high).reshape(len(a["qpos"]), -1))
    return np.concatenate(parts, axis=1)


def _double_pendulum_observe(a: Arrays, p: dict) -> np.ndarray:
    angles = a["qpos"][:, 1:]
    return np.concatenate(
        [
            a["qpos"][:, :1],
            np.sin(angles),
            np.cos(angles),
            np.clip(a["qvel"], -10, 10),
            np.clip(a["qfrc_constraint"], -10, 10)[:, :1],
        ],
        axis=1,
    )


def _reacher_observe(a: Arrays, p: dict) -> np.ndarray:
    angles, bodies = a["qpos"][:, :2], p["body"]
    to_target = a["xpos"][:, bodies["fingertip"], :2] - a["xpos"][:, bodies["target"], :2]
    return np.concatenate([np.cos(angles), np.sin(angles), a["qpos"][:, 2:], a["qvel"][:, :2], to_target], axis=1)


def _pusher_observe(a: Arrays, p: dict) -> np.ndarray:
    xpos, bodies = a["xpos"], p["body"]
    points = [xpos[:, bodies[name]] for name in ("tips_arm", "object", "goal")]
    return np.concatenate([a["qpos"][:, :7], a["qvel"][:, :7], *points], axis=1)


def _humanoid_observe(a: Arrays, p: dict) -> np.ndarray:
    n = len(a["qpos"])
    parts = [_positions(a, p, 2), a["qvel"]]
    for flag, name, first in (
        ("_include_cinert_in_observation", "cinert", 1),
        ("_include_cvel_in_observation", "cvel", 1),
        ("_include_qfrc_actuator_in_observation", "qfrc_actuator", 6),
        ("_include_cfrc_ext_in_observation", "cfrc_ext", 1),
    ):
        if p[flag]:
            parts.append(a[name][:, first:].reshape(n, -1))
    return np.concatenate(parts, axis=1)


LOCOMOTION = ("_exclude_current_positions_from_observation", "_reset_noise_scale", "_terminate_when_unhealthy")

SEMANTICS: dict[str, EnvSemantics] = {
    "HalfCheetah-v5": EnvSemantics(
        native_reward="half_cheetah_v5.py",
        observe=lambda a, p: np.concatenate([_positions(a, p, 1), a["qvel"]], axis=1),
        healthy=None,
        reset=_noisy_reset("normal"),
        params=("_exclude_current_positions_from_observation", "_reset_noise_scale"),
    ),
    "Hopper-v5": EnvSemantics(
        native_reward="hopper_v5.py",
        observe=lambda a, p: np.concatenate([_positions(a, p, 1), np.clip(a["qvel"], -10, 10)], axis=1),
        healthy=_hopper_healthy,
        reset=_noisy_reset("uniform"),
        params=LOCOMOTION + ("_healthy_state_range", "_healthy_z_range", "_healthy_angle_range"),
    ),
    "Walker2d-v5": EnvSemantics(
        native_reward="walker2d_v5.py",
        observe=lambda a, p: np.concatenate([_positions(a, p, 1), np.clip(a["qvel"], -10, 10)], axis=1),
        healthy=_walker_healthy,
        reset=_noisy_reset("uniform"),
        params=LOCOMOTION + ("_healthy_z_range", "_healthy_angle_range"),
    ),
    "Swimmer-v5": EnvSemantics(
        native_reward="swimmer_v5.py",
        observe=lambda a, p: np.concatenate([_positions(a, p, 2), a["qvel"]], axis=1),
        healthy=None,
        reset=_noisy_reset("uniform"),
        params=("_exclude_current_positions_from_observation", "_reset_noise_scale"),
    ),
    "Ant-v5": EnvSemantics(
        native_reward="ant_v5.py",
        observe=_ant_observe,
        healthy=_ant_healthy,
        reset=_noisy_reset("normal"),
        params=LOCOMOTION + ("_healthy_z_range", "_include_cfrc_ext_in_observation", "_contact_force_range"),
    ),
    "InvertedDoublePendulum-v5": EnvSemantics(
        native_reward="inverted_double_pendulum_v5.py",
        observe=_double_pendulum_observe,
        # Terminated once the tip (site 0) is at or below a height of 1.
        healthy=lambda a, p: a["site_xpos"][:, 0, 2] > 1,
        reset=_noisy_reset("normal"),
        params=("_reset_noise_scale",),
        fields=("qfrc_constraint",),
    ),
    "Humanoid-v5": EnvSemantics(
        native_reward="humanoid_v5.py",
        observe=_humanoid_observe,
        # Humanoid.is_healthy: the torso's height strictly within the range.
        healthy=lambda a, p: _between(a["qpos"][:, 2], p["_healthy_z_range"]),
        reset=_noisy_reset("uniform"),
        params=LOCOMOTION
        + (
            "_healthy_z_range",
            "_include_cinert_in_observation",
            "_include_cvel_in_observation",
            "_include_qfrc_actuator_in_observation",
            "_include_cfrc_ext_in_observation",
        ),
        fields=("cinert", "qfrc_actuator"),
    ),
    "Reacher-v5": EnvSemantics(
        native_reward="reacher_v5.py",
        observe=_reacher_observe,
        healthy=None,
        reset=_reacher_reset,
    ),
    "Pusher-v5": EnvSemantics(
        native_reward="pusher_v5.py",
        observe=_pusher_observe,
        healthy=None,
        reset=_pusher_reset,
    ),
}


# --- the vector environment -----------------------------------------------------------


class BatchedVecEnv(VecEnv):
    """N environments of one task stepped as one batch; see the module docstring.

    It keeps the buffers `RewardVecEnv` reads, as `vec_env.CapturingVecEnv`
    does: after `step_wait`, `after` holds every environment's state after its
    step (a terminal state included) and `reset_rows` the rows that reset;
    `advance` makes `after` the next step's `before`, with the reset state in
    the reset rows. Every field is filled at every step (one copy per field for
    the whole batch), so `copy_fields` has nothing to leave out.
    """

    render_mode = None  # it does not render; read by SB3's VecEnv constructor

    def __init__(
        self,
        probe: gym.Env,
        layout: StateLayout,
        physics: Physics,
        semantics: EnvSemantics,
        native_reward: Callable[..., tuple],
        max_episode_steps: int,
        n: int,
    ):
        base = probe.unwrapped
        super().__init__(n, probe.observation_space, probe.action_space)
        self.layout = layout
        self.before = layout.allocate(n)
        self.after = layout.allocate(n)
        self._reset_arrays = layout.allocate(n)  # the reset state of the rows that reset in the last step
        self.reset_rows: list[int] = []
        self.copied_fields = frozenset(layout.shapes)
        self.physics = physics
        self.semantics = semantics
        self.max_episode_steps = max_episode_steps
        model = base.model
        self._params = {name: getattr(base, name) for name in semantics.params}
        self._params.update(
            init_qpos=np.array(base.init_qpos),
            init_qvel=np.array(base.init_qvel),
            body={model.body(i).name: i for i in range(model.nbody)},
        )
        self._terminates = semantics.healthy is not None and self._params.get("_terminate_when_unhealthy", True)
        self._native_reward = native_reward
        self._frame_skip = int(base.frame_skip)
        self._steps = np.zeros(n, dtype=np.int64)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(n)]
        self._actions = np.zeros((n, *self.action_space.shape), dtype=np.float32)
        self._states: dict[int, Any] = {}

    # -- SB3's VecEnv interface

    def reset(self):
        for row, seed in enumerate(self._seeds):
            if seed is not None:
                self._rngs[row] = seeding.np_random(seed)[0]
        self._reset_seeds()
        self._reset_options()
        rows = np.arange(self.num_envs)
        self._reset_rows(rows)
        self.layout.fill(self.before, self.physics.arrays)
        self.reset_rows = []
        return self._observe(self.physics.arrays)

    def copy_fields(self, names) -> None:
        """Every field is filled anyway (a batch copy per field costs next to nothing)."""

    def advance(self) -> None:
        """Make the end of the last step the start of the next (the reset state where an episode ended)."""
        self.before, self.after = self.after, self.before
        if self.reset_rows:
            for name, array in self._reset_arrays.items():
                self.before[name][self.reset_rows] = array[self.reset_rows]

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs, -1)

    def step_wait(self):
        arrays = self.physics.arrays
        self.physics.step(self._actions, self._frame_skip)
        self.layout.fill(self.after, arrays)
        observations = self._observe(arrays)
        native, _ = self._native_reward(self._state(self.before), self._actions, self._state(self.after))
        terminated = (
            ~self.semantics.healthy(arrays, self._params) if self._terminates else np.zeros(self.num_envs, bool)
        )
        self._steps += 1
        truncated = self._steps >= self.max_episode_steps
        dones = terminated | truncated
        infos: list[dict] = [{"TimeLimit.truncated": bool(t)} for t in truncated & ~terminated]
        rows = np.flatnonzero(dones)
        self.reset_rows = rows.tolist()
        if rows.size:
            for row in rows:
                infos[row]["terminal_observation"] = observations[row].copy()
            self._reset_rows(rows)
            self.layout.fill(self._reset_arrays, arrays, rows)
            observations[rows] = self._observe({name: array[rows] for name, array in arrays.items()})
        return observations, np.asarray(native, dtype=np.float32), dones, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        raise AttributeError(f"a batched environment has no per-environment attribute {attr_name!r} to set")

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        raise AttributeError(f"a batched environment has no per-environment method {method_name!r}")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    # -- inside

    def _state(self, arrays: Arrays):
        # `before` and `after` swap roles every step; one State per buffer keeps its named views.
        state = self._states.get(id(arrays))
        if state is None:
            state = self._states[id(arrays)] = self.layout.state(arrays)
        return state

    def _observe(self, arrays: Arrays) -> np.ndarray:
        return self.semantics.observe(arrays, self._params).astype(np.float64, copy=False)

    def _reset_rows(self, rows: np.ndarray) -> None:
        """gymnasium's reset_model for `rows`: each draws from its own generator, in gymnasium's order."""
        drawn = [self.semantics.reset(self._rngs[row], self._params) for row in rows]
        qpos = np.array([position for position, _ in drawn])
        qvel = np.array([velocity for _, velocity in drawn])
        self._steps[rows] = 0
        self.physics.reset(rows, qpos, qvel)


def batched_support(task: Task, simulator: str) -> str | None:
    """None if `task` can run on `simulator` ("batched" or "warp"), else the reason it cannot."""
    if task.env_id not in SEMANTICS:
        known = ", ".join(SEMANTICS)
        return f"{task.env_id} has no batched semantics yet (those with: {known})"
    if task.env_kwargs:
        # The native reward programs reproduce the environments' default arguments only.
        return f"task {task.id} sets env_kwargs ({', '.join(task.env_kwargs)}), which the batched semantics do not reproduce"
    if simulator not in ("batched", "warp"):
        return f"unknown simulator {simulator!r}: use 'gymnasium', 'batched' or 'warp'"
    return None


def make_batched_env(task: Task, n_envs: int, simulator: str, device: str = "cpu") -> BatchedVecEnv:
    """`n_envs` environments of `task` on the CPU batch ("batched") or MuJoCo Warp ("warp").

    Raises UnsupportedSimulatorError, saying why, where the task cannot run there.
    """
    from autoreward.contract import reward_program
    from autoreward.sim.physics import warp_support
    from autoreward.task.files import make_env

    problem = batched_support(task, simulator)
    if problem:
        raise UnsupportedSimulatorError(problem)
    probe = make_env(task)
    model = probe.unwrapped.model
    if simulator == "warp":
        problem = warp_support(model)
        if problem:
            probe.close()
            raise UnsupportedSimulatorError(f"{task.env_id}: {problem}")
    semantics = SEMANTICS[task.env_id]
    layout = StateLayout.from_env(probe, extras=task.extras)
    fields = tuple(layout.shapes) + semantics.fields
    if simulator == "warp":
        physics = WarpPhysics(model, n_envs, fields, device)
    else:
        physics = MujocoPhysics(model, n_envs, fields)
    native = reward_program.load((data_dir("envs") / "rewards" / semantics.native_reward).read_text())
    limit = task.max_episode_steps or probe.spec.max_episode_steps or 1000
    env = BatchedVecEnv(probe, layout, physics, semantics, native, limit, n_envs)
    probe.close()
    return env
