"""MuJoCo Warp (on Warp's CPU device here) follows MuJoCo's CPU trajectories within float32 drift.

Same seed, so the same initial qpos/qvel (rounded to float32), and the same
actions on both simulators. Warp computes in float32, MuJoCo's CPU path in
float64; the difference starts near 1e-7 and grows with every contact
change, roughly tenfold every 5-8 steps under random actions (HalfCheetah:
5e-5 in qpos after 10 steps, 1e-3 after 25, order 1 after 50: the two runs
are then different runs of a chaotic system). So the horizon is short
(HORIZON steps, 1 s of HalfCheetah). Measured over it (2026-11-22): HalfCheetah
qpos 8.6e-4, xpos 4.2e-4, qvel 4.6e-2, reward 3.2e-3; Hopper (15 steps, until
its first fall) qpos 3.2e-7, qvel 1.0e-5, reward 6.7e-6; Reacher and Pusher
(no contacts to speak of) qpos 3.5e-7 and 5.7e-7, qvel 1.7e-6 and 4.1e-6,
reward 1.2e-7. The tolerances are about five times HalfCheetah's figures.

The first run compiles Warp's kernels (one to two minutes on two cores);
they are cached in ~/.cache/autoreward/warp (or WARP_CACHE_PATH).
"""

import os

import numpy as np
import pytest

from autoreward.errors import UnsupportedSimulatorError
from autoreward.sim.batched_env import make_batched_env
from autoreward.task.files import find_task, task_from_sentence

if os.environ.get("AUTOREWARD_WARP") != "require":
    pytest.importorskip("mujoco_warp", reason="MuJoCo Warp is not installed (pip install 'autoreward[gpu]')")


HORIZON = 20
# Largest difference allowed after up to HORIZON steps: positions (m, rad), velocities, rewards.
TOLERANCE = {"qpos": 5e-3, "xpos": 5e-3, "qvel": 0.25, "reward": 2e-2}


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5", "Reacher-v5", "Pusher-v5"])
def test_warp_trajectories_match_mujoco_cpu(env_id):
    task = task_from_sentence(env_id, "move")
    cpu, warp = make_batched_env(task, 4, "batched"), make_batched_env(task, 4, "warp", device="cpu")
    cpu.seed(3), warp.seed(3)
    start_cpu, start_warp = cpu.reset(), warp.reset()
    np.testing.assert_allclose(start_warp, start_cpu, atol=1e-6)  # float32 rounding of the same start
    rng = np.random.default_rng(0)
    worst = dict.fromkeys(TOLERANCE, 0.0)
    for step in range(HORIZON):
        actions = rng.uniform(-1, 1, size=(4, *cpu.action_space.shape)).astype(np.float32)
        cpu.step_async(actions), warp.step_async(actions)
        _, reward_cpu, done_cpu, _ = cpu.step_wait()
        _, reward_warp, done_warp, _ = warp.step_wait()
        for name in ("qpos", "xpos", "qvel"):
            worst[name] = max(worst[name], float(np.abs(cpu.after[name] - warp.after[name]).max()))
        worst["reward"] = max(worst["reward"], float(np.abs(reward_cpu - reward_warp).max()))
        np.testing.assert_array_equal(done_warp, done_cpu, err_msg=f"step {step + 1}")
        cpu.advance(), warp.advance()  # this step's end is the next one's start, as RewardVecEnv does
        if done_cpu.any():  # a reset world starts again from new noise: compare up to here
            break
    print(f"{env_id}: largest Warp - CPU difference over {step + 1} steps: {worst}")
    for name, limit in TOLERANCE.items():
        assert worst[name] < limit, f"{name} drifted {worst[name]:.2e} > {limit:.0e} within {step + 1} steps"
    assert worst["qpos"] > 0  # float32: Warp really ran, it is not the CPU path twice


def test_a_model_warp_cannot_simulate_is_refused_with_its_reason():
    # Humanoid-v5 uses the PGS solver, which MuJoCo Warp does not implement.
    with pytest.raises(UnsupportedSimulatorError, match="PGS"):
        make_batched_env(find_task("humanoid_forward"), 1, "warp")
