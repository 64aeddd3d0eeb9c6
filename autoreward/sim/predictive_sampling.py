"""Predictive sampling: a model-predictive controller that plans with a reward program (issue 28, its core).

MuJoCo MPC's simplest planner, written on this package's own batch of
simulations (`physics.MujocoPhysics`): at each control step it perturbs a
nominal action sequence over a horizon, rolls every perturbed sequence out
from the current state, scores each rollout by the reward program's sum over
the States it passes through, keeps the best as the new nominal (shifted one
step on) and applies its first action. A behaviour a reward asks for is then
seen in one episode, without training a policy.

Why not `mujoco.rollout`: it returns the physics state and sensors, not the
Cartesian arrays a `State` holds (body positions, `cvel`, `cfrc_ext`), which a
reward program reads; `MujocoPhysics` leaves exactly the arrays the State
layout asks for after every step, as the batched simulator does in training.

The sequences are linear splines: `knots` control points spread over the
horizon, each perturbed by Gaussian noise of `noise` times half the control
range, interpolated step by step and clipped to the range. Sample 0 is always
the nominal itself, so the plan never gets worse by the planner's own
measure. A rollout starts as gymnasium's reset does (`mj_resetData`, the
state's `qpos` and `qvel`, `mj_forward`): the first step's `cfrc_ext` is
zero and the solver has no warm start, as after any reset.

`reward` is the program's callable, `(state, action, next_state) ->
(total, parts)`. This module runs it as given: a reward program is hostile,
so it is called here only inside a jailed worker, as in training.
"""

from __future__ import annotations

from typing import Callable

import mujoco
import numpy as np

from autoreward.config import PlannerSettings
from autoreward.sim.physics import MujocoPhysics
from autoreward.sim.state import StateLayout

Reward = Callable[..., tuple]


class PredictiveSampler:
    """Plans the next action of one simulation of `model` by predictive sampling on `reward`."""

    def __init__(
        self,
        model: mujoco.MjModel,
        layout: StateLayout,
        reward: Reward,
        frame_skip: int,
        settings: PlannerSettings = PlannerSettings(),
        seed: int = 0,
    ):
        problem = settings.problem()
        if problem is not None:
            raise ValueError(problem)
        self.settings = settings
        self._layout = layout
        self._reward = reward
        self._frame_skip = frame_skip
        self._physics = MujocoPhysics(model, settings.samples, tuple(layout.shapes))
        self._before = layout.allocate(settings.samples)
        self._after = layout.allocate(settings.samples)
        self._states = {id(a): layout.state(a) for a in (self._before, self._after)}
        limited = model.actuator_ctrllimited.astype(bool)
        low, high = model.actuator_ctrlrange[:, 0].copy(), model.actuator_ctrlrange[:, 1].copy()
        low[~limited], high[~limited] = -1.0, 1.0  # an unlimited actuator is perturbed on a unit scale
        self._low, self._high = low, high
        self._rng = np.random.default_rng(seed)
        self.nominal = np.clip(np.zeros((settings.horizon, model.nu)), low, high)
        # Each step's position between the knots: weights of the knot before it and the one after.
        where = np.linspace(0, settings.knots - 1, settings.horizon)
        self._left = np.minimum(where.astype(int), settings.knots - 2)
        self._share = (where - self._left)[:, None]
        self.last_returns: np.ndarray | None = None  # each sample's return at the last call of `plan`

    def plan(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """The action to apply now from the state (`qpos`, `qvel`); the nominal sequence moves one step on."""
        s = self.settings
        sequences = self._candidates()
        returns = self._rollouts(np.asarray(qpos, np.float64), np.asarray(qvel, np.float64), sequences)
        self.last_returns = returns
        finite = np.where(np.isfinite(returns), returns, -np.inf)
        best = sequences[int(np.argmax(finite))] if np.isfinite(finite).any() else self.nominal
        action = best[0].copy()
        self.nominal = np.concatenate([best[1:], best[-1:]]) if s.horizon > 1 else best.copy()
        return action

    def _candidates(self) -> np.ndarray:
        """(samples, horizon, nu): the nominal, then perturbations of it along linear splines."""
        s = self.settings
        half_range = (self._high - self._low) / 2
        knots = self._rng.normal(0.0, s.noise, (s.samples - 1, s.knots, self.nominal.shape[1])) * half_range
        steps = knots[:, self._left] * (1 - self._share) + knots[:, self._left + 1] * self._share
        perturbed = np.clip(self.nominal[None] + steps, self._low, self._high)
        return np.concatenate([self.nominal[None], perturbed])

    def _rollouts(self, qpos: np.ndarray, qvel: np.ndarray, sequences: np.ndarray) -> np.ndarray:
        rows = np.arange(self.settings.samples)
        self._physics.reset(rows, np.repeat(qpos[None], rows.size, 0), np.repeat(qvel[None], rows.size, 0))
        before, after = self._before, self._after
        self._layout.fill(before, self._physics.arrays)
        returns = np.zeros(rows.size)
        for t in range(self.settings.horizon):
            actions = sequences[:, t]
            self._physics.step(actions, self._frame_skip)
            self._layout.fill(after, self._physics.arrays)
            total, _ = self._reward(self._states[id(before)], actions, self._states[id(after)])
            returns += np.asarray(total, dtype=np.float64).reshape(rows.size)
            before, after = after, before
        return returns
