"""Shared test fixtures: tasks and reward programs used across the suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autoreward.config import CheckOptions
from autoreward.resources import data_dir
from autoreward.sandbox.jail import SETTING_VARIABLE, Jail
from autoreward.task.files import find_task

REPO = Path(__file__).resolve().parent.parent
# The worker job that runs plain Python (tests/jobs/probe.py). The tests' jail shows tests/jobs/ for it and
# nothing else of tests/ (a jailed worker imports it as a namespace package).
PROBE = "tests.jobs.probe:run_probe_job"


@pytest.fixture(scope="session")
def cheetah():
    return find_task("half_cheetah_forward")


@pytest.fixture(scope="session")
def hopper():
    return find_task("hopper_forward")


@pytest.fixture(scope="session")
def jail():
    """The worker jail, probed once. AUTOREWARD_JAIL=require (scripts/test.sh sets it where bwrap is installed)
    turns a jail that cannot run into an error instead of skipped jail tests."""
    return Jail.from_setting(os.environ.get(SETTING_VARIABLE)).showing([REPO / "tests" / "jobs"])


@pytest.fixture
def active_jail(jail):
    """The jail, for tests of what it holds: skipped where bubblewrap does not work here."""
    if not jail.active:
        pytest.skip(f"no bubblewrap jail on this machine: {jail.reason}")
    return jail


@pytest.fixture
def quick_check():
    """Options that keep a check short: fewer states and a short hang detector."""
    return CheckOptions(transitions=96, batch_size=32, idle_seconds=4.0)


def human_reward(task) -> str:
    return Path(task.human_reward).read_text()


def shipped_task_files() -> list[Path]:
    return sorted(data_dir("envs").glob("*.toml"))


def worker_pids(output_dir: Path) -> list[int]:
    """The pids (as seen from here) of the worker processes running the job in `output_dir`."""
    job = str(Path(output_dir).resolve() / "job.json").encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if arguments[1:4] == [b"-m", b"autoreward.sandbox.worker", job]:
            found.append(int(entry.name))
    return found


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found
