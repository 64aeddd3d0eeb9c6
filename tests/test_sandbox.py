"""Workers: no secrets inherited, supervised budgets, and a clear outcome when one dies."""

import os

from autoreward.config import WorkerLimits
from autoreward.sandbox.supervisor import run_worker, worker_environment


def test_the_worker_environment_carries_no_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    environment = worker_environment(tmp_path)
    assert "sk-test-secret" not in environment.values()
    assert not any("SECRET" in k or "KEY" in k for k in environment)
    assert environment["HOME"] == str(tmp_path)


def test_an_unknown_job_is_reported_as_an_error(tmp_path):
    outcome = run_worker("nonsense", {}, tmp_path, WorkerLimits(wall_seconds=60, idle_seconds=30))
    assert outcome.status == "error" and "unknown job kind" in outcome.message
    assert (tmp_path / "worker.log").exists()


def test_a_worker_past_its_wall_budget_is_killed(tmp_path, cheetah):
    from autoreward.serialize import to_dict

    code = "def compute_reward(state, action, next_state):\n    while True:\n        pass\n"
    payload = {"task": to_dict(cheetah), "code": code, "options": {"transitions": 8, "batch_size": 8}}
    outcome = run_worker("check", payload, tmp_path, WorkerLimits(wall_seconds=3, idle_seconds=30))
    assert outcome.status == "timeout" and "budget of 3 s" in outcome.message


def test_no_worker_is_left_behind(tmp_path, cheetah):
    from autoreward.serialize import to_dict

    code = "def compute_reward(state, action, next_state):\n    while True:\n        pass\n"
    payload = {"task": to_dict(cheetah), "code": code, "options": {"transitions": 8, "batch_size": 8}}
    run_worker("check", payload, tmp_path, WorkerLimits(wall_seconds=30, idle_seconds=2))
    leftovers = [p for p in os.popen("ps -eo args").read().splitlines() if str(tmp_path) in p]
    assert leftovers == []
