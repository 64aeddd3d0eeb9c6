"""A command that stops when told: Ctrl-C (SIGINT) or SIGTERM ends a run within seconds, leaves no worker
behind, says how to resume, and the resumed run finishes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from autoreward.loop.run_store import RunStore

from .chat_server import ChatServer
from .conftest import RUN_FLAGS, human_reward, processes_mentioning, run_cli_to_end, start_cli, the_run
from .llm_persona import persona

FLAGS = ["run", "cheetah_back_short", "--tasks-dir", "tasks", *RUN_FLAGS, "--steps", "6000", "--final-seeds", "1"]


def _trainings_running(workspace) -> list[str]:
    return [line for line in processes_mentioning(str(workspace.resolve())) if "training/learner/job.json" in line]


def _interrupt_while_two_trainings_run(workspace, server, signal_number) -> tuple[str, int, float]:
    """Start a run, send `signal_number` to its process group once two trainings are under way."""
    process = start_cli(FLAGS, server.url, workspace, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(_trainings_running(workspace)) < 2:
        assert time.monotonic() < deadline and process.poll() is None, "two trainings never ran at once"
        time.sleep(0.2)
    time.sleep(2.0)  # well into training
    os.killpg(process.pid, signal_number)  # as a terminal does: the whole foreground group
    sent = time.monotonic()
    output, _ = process.communicate(timeout=60)
    return output, process.returncode, time.monotonic() - sent


@pytest.mark.slow  # two rounds of 6 000-step trainings, interrupted and resumed: about two minutes
def test_ctrl_c_stops_a_run_in_seconds_and_the_resumed_run_finishes(workspace):
    with ChatServer(responder=persona) as server:
        output, code, seconds = _interrupt_while_two_trainings_run(workspace, server, signal.SIGINT)
        run = the_run(workspace)
        assert code == 130, output
        assert seconds < 20
        assert "Traceback" not in output
        resume = f"autoreward run --resume {run.relative_to(workspace)}"
        assert " ".join(output.split()).endswith(f"interrupted (Ctrl-C); resume the run with: {resume}")
        time.sleep(1.0)
        assert _trainings_running(workspace) == [] and processes_mentioning(str(run)) == []
        with sqlite3.connect(run / "index.sqlite") as db:
            assert db.execute("SELECT status FROM run").fetchone()[0] == "interrupted"
        # The interrupted trainings left no record: nothing of them is taken for a result.
        assert all(c.status == "ready" for c in RunStore.open(run).candidates() if c.round == 1)

        run_cli_to_end(["run", "--resume", str(run.relative_to(workspace))], server.url, workspace)
    store = RunStore.open(run)
    assert store.load_final() is not None
    with sqlite3.connect(run / "index.sqlite") as db:
        assert db.execute("SELECT status FROM run").fetchone()[0] == "finished"
    finished = [e for e in store.events() if e["event"] == "training finished"]
    assert len(finished) == len({e["candidate"] for e in finished})  # each training finished once


@pytest.mark.slow
def test_sigterm_stops_a_run_the_same_way_with_its_own_exit_code(workspace):
    with ChatServer(responder=persona) as server:
        output, code, seconds = _interrupt_while_two_trainings_run(workspace, server, signal.SIGTERM)
    assert code == 143 and seconds < 20, output
    assert "interrupted (SIGTERM); resume the run with: autoreward run --resume" in " ".join(output.split())
    time.sleep(1.0)
    assert _trainings_running(workspace) == []


@pytest.mark.slow
def test_ctrl_c_stops_a_training_and_a_second_one_exits_at_once(tmp_path, hopper):
    (tmp_path / "reward.py").write_text(human_reward(hopper))
    command = [sys.executable, "-m", "autoreward", "train", "hopper_forward", "--reward", "reward.py"]
    process = subprocess.Popen(
        command + ["--steps", "500000", "--no-videos"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not [p for p in processes_mentioning(str(tmp_path.resolve())) if "training/learner/job.json" in p]:
        assert time.monotonic() < deadline and process.poll() is None, "the training never started"
        time.sleep(0.2)
    time.sleep(2.0)
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # impatient: the second exits at once
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 130, output
    assert "Traceback" not in output
    time.sleep(1.0)
    assert [p for p in processes_mentioning(str(tmp_path.resolve())) if "training/learner/job.json" in p] == []
