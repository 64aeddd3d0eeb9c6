"""Shared test fixtures: tasks and reward programs used across the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoreward.config import CheckOptions
from autoreward.records import Candidate
from autoreward.resources import data_dir
from autoreward.sandbox.jail import SETTING_VARIABLE, USER_VARIABLE, Jail
from autoreward.serialize import read_json
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
    jail = Jail.from_setting(os.environ.get(SETTING_VARIABLE), user=os.environ.get(USER_VARIABLE))
    return jail.showing([REPO / "tests" / "jobs"])


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


# --- design runs through the command line, against a chat server (test_loop and the tests that reuse its runs)

SECRET = "sk-test-5ecret-do-not-write-me-anywhere-0123456789"
SHORT_TASK = """
id = "cheetah_back_short"
env = "HalfCheetah-v5"
description = "Make the half cheetah run backwards, towards -x, as fast as it can."
max_episode_steps = 40

[fitness]
step = "-(next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt"
reduce = "mean"
description = "mean velocity along -x, m/s"

[budget]
steps = 512
n_envs = 2
eval_episodes = 2
curve_points = 2
"""
RUN_FLAGS = ["--rounds", "2", "--candidates", "2", "--repairs", "1", "--final-seeds", "2", "--workers", "2"]
# A one-round run of two candidates, one seed at the end: what the tests of a single round ask for.
ONE_ROUND_FLAGS = ["--rounds", "1", "--candidates", "2", "--repairs", "1", "--final-seeds", "1", "--workers", "2"]


def start_cli(args: list[str], base_url: str, cwd: Path, **popen) -> subprocess.Popen:
    environment = dict(os.environ, OPENAI_API_KEY=SECRET, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "autoreward", *args, "--base-url", base_url, "--model", "test-model"]
    return subprocess.Popen(
        command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def run_autoreward(
    *args: str, cwd: Path, timeout: float = 600, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`autoreward ARGS` as a user types it, to its end, with a terminal wide enough that no sentence wraps;
    `environment` adds to (or overrides) this process's environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "autoreward", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=dict(os.environ, COLUMNS="250", **(environment or {})),
        timeout=timeout,
    )


def run_cli_to_end(args, base_url, cwd, timeout=400) -> str:
    process = start_cli(args, base_url, cwd)
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cheetah_back_short.toml").write_text(SHORT_TASK)
    return tmp_path


def the_run(workspace: Path) -> Path:
    (folder,) = runs_made(workspace)
    return folder


def runs_made(workspace: Path) -> list[Path]:
    """The run folders a run made (a run killed while being created leaves none, at most an empty folder)."""
    runs = workspace / "runs"
    found = runs.glob("cheetah_back_short__design*/config.json") if runs.exists() else []
    return [config.parent for config in found]


def candidates_of(run: Path) -> dict[str, Candidate]:
    return {c.id: c for c in (read_json(p, Candidate) for p in run.glob("round_*/*/candidate.json"))}


# --- probes of the jail


def attempts(code_by_name: dict[str, str]) -> str:
    """Probe code that runs each snippet and records 'ok' or the name of the error it raised."""
    lines = ["result = {}"]
    for name, snippet in code_by_name.items():
        lines += ["try:", f"    {snippet}", f"    result[{name!r}] = 'ok'", "except Exception as error:"]
        lines += [f"    result[{name!r}] = type(error).__name__"]
    return "\n".join(lines) + "\n"
