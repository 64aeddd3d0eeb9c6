"""autoreward used from Python as its README shows: the public names, their errors, a training and a design run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import autoreward
from autoreward.config import LLMSettings

from .conftest import REPO

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
def test_the_readme_lines_check_train_and_design_to_an_export(tmp_path, monkeypatch):
    """README's "Using it from Python" block, run exactly as written (in a folder of its own: runs/ lands there)."""
    readme = (REPO / "README.md").read_text()
    marked = readme.split("<!-- tests/test_api.py runs exactly the lines of this block -->\n```python\n")[1]
    block = marked.split("```")[0]
    monkeypatch.chdir(tmp_path)
    seen: dict = {}
    exec(compile(block, "README.md", "exec"), seen)
    run, trained = seen["run"], seen["trained"]
    assert trained.score is not None and trained.folder.parent == Path("runs") and trained.check.ok
    assert run.status == "finished" and run.best is not None and run.final.candidate_id == run.best.id
    assert {c.id for c in run.candidates} >= {"r1c0", "r1c1", "r1c2", "r2c0"}
    assert "# Reward report: mountain_car_quick" in run.report()
    module = tmp_path / "my_reward.py"
    assert module.read_text().count(run.best.code.strip().splitlines()[-1].strip()) >= 1
    assert (tmp_path / "my_reward_report.md").is_file() and (run.path / "report.html").is_file()
