"""A training worker that dies mid-training is reported by `train` as a WorkerError naming the reason."""

import os
import signal
import time

import pytest

from autoreward.config import TrainingConfig
from autoreward.errors import WorkerError
from autoreward.loop.runner import Runner
from autoreward.loop.training import train

from .conftest import human_reward, worker_pids

LONG = TrainingConfig(steps=200_000, n_envs=2, eval_episodes=1, curve_points=100)


def _send_once_training(sent: list, output_dir, signal_number):
    """A progress handler that sends `signal_number` to the worker once training has begun."""

    def handle(data: dict) -> None:
        if data.get("stage") in ("training", "curve") and not sent:
            for pid in worker_pids(output_dir):
                os.kill(pid, signal_number)
                sent.append(pid)

    return handle


def test_a_worker_killed_mid_training_is_reported(hopper, tmp_path):
    sent: list = []
    with pytest.raises(WorkerError, match="killed by SIGKILL"):
        train(
            hopper,
            LONG,
            tmp_path,
            human_reward(hopper),
            _send_once_training(sent, tmp_path / "learner", signal.SIGKILL),
            runner=Runner.connect(),
        )
    assert sent, "the worker was never found"


def test_a_worker_that_crashes_mid_training_is_reported(hopper, tmp_path):
    """A segmentation fault, as native code would raise it (the real crash: tests/test_jail.py)."""
    sent: list = []
    with pytest.raises(WorkerError, match="crashed with SIGSEGV"):
        train(
            hopper,
            LONG,
            tmp_path,
            human_reward(hopper),
            _send_once_training(sent, tmp_path / "learner", signal.SIGSEGV),
            runner=Runner.connect(),
        )
    assert (
        "Fatal Python error: Segmentation fault" in (tmp_path / "learner" / "worker.log").read_text()
    )  # faulthandler's


def test_a_reward_that_exhausts_memory_mid_training_is_reported(hopper, tmp_path):
    # Each call keeps another 512 MiB of address space (never touched, so no real memory is used).
    code = (
        "import numpy as np\n"
        "HOARD = []\n"
        "def compute_reward(state, action, next_state):\n"
        "    HOARD.append(np.empty(2**26))\n"
        "    v = next_state.qpos[:, 0]\n"
        "    return v, {'v': v}\n"
    )
    config = TrainingConfig(steps=4096, n_envs=2, eval_episodes=1, memory_bytes=3 * 1024**3)
    with pytest.raises(WorkerError, match="ran out of memory \\(its limit is 3 GiB"):
        train(hopper, config, tmp_path, code, runner=Runner.connect())


def test_a_worker_past_its_wall_budget_is_reported(hopper, tmp_path):
    config = TrainingConfig(steps=10**7, n_envs=2, eval_episodes=1, wall_seconds=6)
    with pytest.raises(WorkerError, match="exceeded its wall-clock budget of 6 s"):
        train(hopper, config, tmp_path, human_reward(hopper), runner=Runner.connect())
    deadline = time.monotonic() + 5  # the jailed worker dies with bwrap, a moment after it
    while worker_pids(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_pids(tmp_path) == []
