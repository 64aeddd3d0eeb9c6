"""autoreward used from Python as its README shows: the public names, their errors, a training and a design run."""

from __future__ import annotations

import subprocess
import sys

import pytest

import autoreward
from autoreward.config import LLMSettings
from autoreward.resources import data_dir

SPEED = """
import numpy as np

def compute_reward(state, action, next_state):
    speed = -(next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt
    return speed, {"speed": speed}
"""


def test_the_package_names_its_version_and_every_public_name_resolves():
    assert autoreward.__version__ and "__version__" in autoreward.__all__
    for name in autoreward.__all__:
        assert getattr(autoreward, name) is not None, name
        assert name == "__version__" or getattr(autoreward, name).__doc__, f"{name} has no docstring"
    with pytest.raises(AttributeError):
        autoreward.no_such_name  # noqa: B018


def test_importing_the_package_loads_no_training_library():
    code = "import sys, autoreward; print(autoreward.__version__, 'torch' in sys.modules, 'gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "False"]


def test_mistakes_are_one_sentence_autoreward_errors(tmp_path):
    with pytest.raises(autoreward.AutorewardError, match="unknown task .no_such_task."):
        autoreward.load_task("no_such_task")
    task = autoreward.load_task("half_cheetah_backward")
    with pytest.raises(autoreward.AutorewardError, match="--steps must be at least 1, got 0"):
        autoreward.training_config(task, steps=0)
    with pytest.raises(autoreward.AutorewardError, match="--device must be cpu, cuda or cuda:N"):
        autoreward.training_config(task, device="gpu")
    with pytest.raises(autoreward.AutorewardError, match="name a task"):
        autoreward.design(runs_dir=tmp_path)
    with pytest.raises(TypeError, match="not a setting of a design run: colour"):
        autoreward.design(task, llm=LLMSettings(backend="replay", transcript="x.md"), runs_dir=tmp_path, colour=1)
    with pytest.raises(TypeError, match="the models are the LLM's settings"):
        autoreward.design(task, llm=LLMSettings(backend="replay", transcript="x.md"), runs_dir=tmp_path, model="m")
    with pytest.raises(autoreward.AutorewardError, match="is not a run folder"):
        autoreward.Run.open(tmp_path / "nothing")
    assert not any(tmp_path.iterdir())  # no run folder was left behind


def test_describe_and_check_work_on_a_task():
    task = autoreward.load_task("half_cheetah_backward")
    assert "class State" in autoreward.describe(task)
    assert autoreward.check(task, SPEED).ok
    broken = autoreward.check(task, SPEED.replace("return speed,", "return float(speed.sum()),"))
    assert not broken.ok and broken.category.value == "wrong_shape"


@pytest.mark.slow  # one real training of 1024 steps and a check that fails: about 20 s
def test_train_returns_the_task_score_and_its_folder_and_refuses_a_failing_program(tmp_path):
    task = autoreward.load_task("half_cheetah_backward")
    trained = autoreward.train(task, SPEED, steps=1024, envs=2, eval_episodes=1, videos=False, runs_dir=tmp_path)
    assert trained.score == trained.training.evaluation.fitness_mean and trained.score is not None
    assert trained.check.ok and (trained.folder / "result.json").is_file() and trained.folder.parent == tmp_path
    assert (trained.folder / "reward.py").read_text() == SPEED
    with pytest.raises(autoreward.RewardCheckFailed, match="failed its check") as failed:
        autoreward.train(task, "def compute_reward(state, action, next_state):\n    return 1\n", runs_dir=tmp_path)
    assert not failed.value.result.ok


@pytest.mark.slow  # the demo's transcript replayed on 1024 steps a candidate: about 2 minutes on two cores
def test_a_design_run_from_python_opens_exports_and_reports(tmp_path):
    task = autoreward.load_task("mountain_car_quick")
    transcript = data_dir("envs") / "demo" / "mountain_car_quick.md"
    llm = autoreward.LLMSettings(backend="replay", model="", transcript=str(transcript))
    run = autoreward.design(
        task,
        llm=llm,
        rounds=2,
        candidates=3,
        repair_attempts=1,
        final_seeds=1,
        steps=1024,
        eval_episodes=2,
        workers=2,
        videos=False,
        runs_dir=tmp_path / "runs",
    )
    assert run.status == "finished" and run.best is not None and run.final.candidate_id == run.best.id
    assert {c.id for c in run.candidates} >= {"r1c0", "r1c1", "r1c2", "r2c0"}
    again = autoreward.Run.open(run.path)
    assert again.best.id == run.best.id and "# Reward report: mountain_car_quick" in again.report()
    module = again.export(tmp_path / "my_reward.py")
    assert module.read_text().count(run.best.code.strip().splitlines()[-1].strip()) >= 1
    assert (tmp_path / "my_reward_report.md").is_file() and (run.path / "report.html").is_file()
