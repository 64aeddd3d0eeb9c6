"""Reliability of whole runs: LLM faults mid-run, and the orchestrator killed at random moments.

A faulty LLM server is retried or reported in one sentence, and the run goes
on. A killed run, resumed, ends with all its results, a consistent folder, no
candidate trained to the end twice, and no LLM call answered twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time

import pytest

from autoreward.records import Candidate
from autoreward.serialize import read_json

from .chat_server import ChatServer, Drop, Hang, Reply, Status, Truncate
from .conftest import RUN_FLAGS, candidates_of, run_cli_to_end, runs_made, start_cli, the_run
from .llm_persona import persona

KILLS = 10


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a loaded machine: each resume starts a Python and its workers again
def test_a_run_killed_ten_times_at_random_moments_ends_with_every_result_and_no_repeated_work(workspace):
    chooser = random.Random(20261122)
    flags = ["run", "cheetah_back_short", "--tasks-dir", "tasks", *RUN_FLAGS]
    kills = 0
    with ChatServer(responder=persona) as server:
        process = start_cli(flags, server.url, workspace, start_new_session=True)
        while kills < KILLS:
            time.sleep(chooser.uniform(0.5, 6.0))
            if process.poll() is not None:
                break  # it finished before this kill: the loop below resumes nothing
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            kills += 1
            made = runs_made(workspace)
            if not made:  # killed before its run folder was whole: nothing to resume, so it starts again
                process = start_cli(flags, server.url, workspace, start_new_session=True)
                continue
            (run,) = made
            process = start_cli(
                ["run", "--resume", str(run.relative_to(workspace))], server.url, workspace, start_new_session=True
            )
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output
        requests = [json.dumps(r, sort_keys=True) for r in server.requests]

    run = the_run(workspace)
    assert kills >= 5, "the run finished too fast for the kills to test anything"
    assert len(requests) == len(set(requests)), "an LLM call reached the server twice"

    # Every result is there, and the folder agrees with itself.
    final = read_json(run / "final" / "final.json")
    candidates = candidates_of(run)
    assert set(candidates) == {"r1c0", "r1c1", "r2c0", "r2c1"} and final["candidate_id"] in candidates
    for number in (1, 2):
        result = read_json(run / f"round_{number}" / "round.json")
        assert set(result["candidate_ids"]) <= set(candidates)
    with sqlite3.connect(run / "index.sqlite") as db:
        indexed = dict(db.execute("SELECT id, status FROM candidate"))
        assert db.execute("SELECT status FROM run").fetchone() == ("finished",)
    assert indexed == {k: c.status for k, c in candidates.items()}
    assert all(isinstance(c, Candidate) for c in candidates.values())
    assert (run / "export" / "reward.py").exists()

    # No candidate's training ran to the end twice.
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.endswith("}")]
    finished = [e["candidate"] for e in events if e["event"] == "training finished"]
    assert len(finished) == len(set(finished)) == sum(c.status == "trained" for c in candidates.values())


FAULTS = [
    Status(429, {"retry-after": "0"}),
    Status(500),
    Drop(),
    Truncate("VERDICT: ACCEPT"),
    Hang(3.0),
    Status(503, {"retry-after": "1"}),
]


@pytest.mark.slow
def test_a_run_through_a_faulty_server_finishes_with_every_fault_retried(workspace):
    """Every other request meets a fault, and one designer reply is several megabytes with no usable code."""
    count = {"n": 0}

    def faulty(body: dict):
        count["n"] += 1
        n = count["n"]
        if n % 2 == 1 and n // 2 < len(FAULTS):
            return FAULTS[n // 2]
        reply = persona(body)
        if (
            body.get("seed") == 1
            and len(body["messages"]) == 2
            and "best reward so far" not in body["messages"][1]["content"]
        ):
            return Reply("Let me think. " * 400_000 + reply.text)  # ~5.6 MB; the code comes after the cut
        return reply

    flags = ["run", "cheetah_back_short", "--tasks-dir", "tasks", *RUN_FLAGS, "--llm-timeout", "2", "--repairs", "2"]
    with ChatServer(responder=faulty) as server:
        output = run_cli_to_end(flags, server.url, workspace)
    run = the_run(workspace)
    assert count["n"] > 2 * len(FAULTS)
    assert "Traceback" not in output
    candidates = candidates_of(run)
    huge = candidates["r1c1"].attempts[0]
    assert huge.code is None and "no python code block" in huge.problem  # cut at 200 000 characters, then repaired
    assert candidates["r1c1"].status == "trained"
    assert read_json(run / "final" / "final.json")["candidate_id"] in candidates


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a loaded machine: each resume starts a Python and its workers again
def test_a_training_worker_killed_from_outside_fails_its_candidate_and_the_round_goes_on(workspace):
    import subprocess

    flags = ["run", "cheetah_back_short", "--tasks-dir", "tasks", *RUN_FLAGS, "--steps", "20000"]
    with ChatServer(responder=persona) as server:
        process = start_cli(flags, server.url, workspace)
        victim = None
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline:
            # This test's worker only: a pattern without the workspace would kill any run's r1c1 on the machine.
            pattern = f"{workspace.resolve()}/runs/.*/round_1/r1c1/training/learner/job.json"
            found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
            pids = [int(p) for p in found.stdout.split()]
            if pids:
                time.sleep(3.0)  # well into training
                victim = pids
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        output, _ = process.communicate(timeout=600)
    assert victim, "the training worker never started"
    assert process.returncode == 0, output
    candidates = candidates_of(the_run(workspace))
    assert candidates["r1c1"].status == "training_failed"
    assert "SIGKILL" in candidates["r1c1"].message
    assert candidates["r1c0"].status == "trained"  # the round went on
    assert read_json(the_run(workspace) / "round_1" / "round.json")["best_so_far_id"] == "r1c0"
