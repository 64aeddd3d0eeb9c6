"""Predictive sampling plans with a reward program on real MuJoCo: the behaviour follows the reward."""

import numpy as np
import pytest

from autoreward.config import PlannerSettings
from autoreward.sim.predictive_sampling import PredictiveSampler
from autoreward.sim.state import StateLayout
from autoreward.task.files import find_task, make_env

QUICK = PlannerSettings(horizon=15, samples=12, noise=0.3, knots=3)


@pytest.fixture()
def cheetah():
    task = find_task("half_cheetah_forward")
    env = make_env(task)
    env.reset(seed=0)
    yield env, StateLayout.from_env(env, extras=task.extras)
    env.close()


def _speed(sign: float):
    def reward(state, action, next_state):
        speed = sign * np.asarray(next_state.qvel)[:, 0]
        return speed, {"speed": speed}

    return reward


def _episode(env, layout, reward, steps: int, settings: PlannerSettings = QUICK) -> float:
    base = env.unwrapped
    planner = PredictiveSampler(base.model, layout, reward, int(base.frame_skip), settings, seed=1)
    for _ in range(steps):
        action = planner.plan(base.data.qpos.copy(), base.data.qvel.copy())
        assert action.shape == (base.model.nu,) and np.all(np.abs(action) <= 1.0)
        env.step(action.astype(np.float32))
    return float(base.data.qpos[0])


def test_the_cheetah_runs_the_way_its_reward_asks(cheetah):
    env, layout = cheetah
    forward = _episode(env, layout, _speed(1.0), 40)
    env.reset(seed=0)
    backward = _episode(env, layout, _speed(-1.0), 40)
    env.reset(seed=0)
    for _ in range(40):
        env.step(np.zeros(6, np.float32))
    still = float(env.unwrapped.data.qpos[0])
    # 40 control steps are 2 s of simulated time; standing still moves the cheetah a few centimetres.
    assert forward > still + 0.5 and backward < still - 0.3, (forward, backward, still)


def test_the_nominal_is_sample_zero_and_a_reward_with_no_finite_return_keeps_it(cheetah):
    env, layout = cheetah
    base = env.unwrapped
    broken = lambda s, a, n: (np.full(a.shape[0], np.nan), {})  # noqa: E731
    planner = PredictiveSampler(base.model, layout, broken, int(base.frame_skip), QUICK)
    planner.nominal[:] = 0.25
    action = planner.plan(base.data.qpos.copy(), base.data.qvel.copy())
    assert np.allclose(action, 0.25) and np.isnan(planner.last_returns).all()
    # With a reward that prefers sample 0's actions, the planner picks it whatever the noise drew.
    near = lambda s, a, n: (-np.square(a - 0.25).sum(1), {})  # noqa: E731
    planner = PredictiveSampler(base.model, layout, near, int(base.frame_skip), QUICK)
    planner.nominal[:] = 0.25
    planner.plan(base.data.qpos.copy(), base.data.qvel.copy())
    assert int(np.argmax(planner.last_returns)) == 0


@pytest.mark.parametrize(
    "settings, words",
    [
        (PlannerSettings(horizon=0), "horizon must be at least 1"),
        (PlannerSettings(samples=1), "at least 2 samples"),
        (PlannerSettings(horizon=3, knots=5), "knots must be between 2 and the horizon + 1 (4)"),
        (PlannerSettings(noise=0.0), "noise must be above 0"),
    ],
)
def test_settings_that_cannot_plan_say_why(settings, words):
    assert words in settings.problem()
    assert PlannerSettings().problem() is None
