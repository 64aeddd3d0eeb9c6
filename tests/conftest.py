"""Shared test fixtures: tasks and reward programs used across the suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoreward.checker import CheckOptions
from autoreward.resources import data_dir
from autoreward.tasks import find_task

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def cheetah():
    return find_task("half_cheetah_forward")


@pytest.fixture(scope="session")
def hopper():
    return find_task("hopper_forward")


@pytest.fixture
def quick_check():
    """Options that keep a check short: fewer states and a short hang detector."""
    return CheckOptions(transitions=96, batch_size=32, idle_seconds=4.0)


def human_reward(task) -> str:
    return Path(task.human_reward).read_text()


def shipped_task_files() -> list[Path]:
    return sorted(data_dir("envs").glob("*.toml"))
