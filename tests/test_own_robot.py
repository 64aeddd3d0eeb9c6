"""Your own robot: a gymnasium package of our own (examples/point_goal, installed editable by setup.sh, as
people develop their robots) used by its `module:id`, and the mistakes a task file of one can hold.

Everything that runs here runs as a user's commands would: through the command line, in jailed workers.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autoreward.config import TrainingConfig
from autoreward.errors import TaskError
from autoreward.loop.runner import Runner
from autoreward.loop.training import train
from autoreward.task.files import find_task, load_task_file, task_folders, task_python_paths

from .conftest import PROBE, REPO, run_autoreward

if importlib.util.find_spec("point_goal") is None:  # scripts/setup.sh installs it; a bare checkout may not have
    pytest.skip("examples/point_goal is not installed (pip install -e examples/point_goal)", allow_module_level=True)

EXAMPLE = REPO / "examples" / "point_goal"
TASK_FILE = EXAMPLE / "point_goal_reach.toml"
REWARD = """
import numpy as np

def compute_reward(state, action, next_state):
    offset = next_state.bodies.goal.pos[:, :2] - next_state.bodies.point.pos[:, :2]
    distance = np.sqrt(np.sum(offset ** 2, axis=1))
    return -distance, {"distance": -distance}
"""


autoreward = run_autoreward  # every step here is a command a user types


def test_the_package_is_an_editable_install_outside_every_folder_the_jail_shows_by_default(jail):
    package = Path(importlib.util.find_spec("point_goal").submodule_search_locations[0])
    assert package == EXAMPLE / "point_goal"
    assert not any(package.is_relative_to(p) for p in jail.read_only if not p.endswith("jobs"))


def test_describe_check_and_train_take_the_module_id(tmp_path):
    described = autoreward("describe", "point_goal:PointGoal-v0", cwd=tmp_path)
    assert described.returncode == 0, described.stderr
    assert (
        "point: Body" in described.stdout and "goal: Body" in described.stdout and "x: SlideJoint" in described.stdout
    )
    (tmp_path / "reward.py").write_text(REWARD)
    checked = autoreward("check", "point_goal:PointGoal-v0", "--reward", "reward.py", cwd=tmp_path)
    assert checked.returncode == 0 and "check passed" in checked.stdout, checked.stdout + checked.stderr
    trained = autoreward(
        "train",
        str(TASK_FILE),
        "--reward",
        "reward.py",
        "--steps",
        "1024",
        "--envs",
        "2",
        "--eval-episodes",
        "1",
        "--no-videos",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "distance to the goal at the end of the episode" in trained.stdout


def test_the_jail_shows_the_package_folder_and_nothing_around_it(jail, tmp_path):
    from autoreward.sandbox.supervisor import run_worker

    if not jail.active:
        pytest.skip(f"no bubblewrap jail on this machine: {jail.reason}")
    task = load_task_file(TASK_FILE)
    assert task_folders(task) == (str(EXAMPLE / "point_goal"),) and task_python_paths(task) == (str(EXAMPLE),)
    shown = jail.showing(task_folders(task)).importing(task_python_paths(task))
    code = (
        "import os, point_goal\n"
        f"result = [os.path.exists({str(EXAMPLE / 'point_goal' / 'point_goal.xml')!r}),"
        f" os.path.exists({str(EXAMPLE / 'pyproject.toml')!r}), os.path.exists({str(TASK_FILE)!r})]"
    )
    outcome = run_worker(PROBE, {"code": code}, tmp_path, jail=shown)
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    assert outcome.result == [True, False, False]  # its model, but not its project's other files


def test_a_jailed_training_of_the_package_environment(jail, tmp_path):
    task = load_task_file(TASK_FILE)
    result = train(
        task,
        TrainingConfig(steps=512, n_envs=2, eval_episodes=1, video=False),
        tmp_path,
        REWARD,
        runner=Runner.connect(jail=jail),
    )
    assert result.evaluation.fitness_mean is not None and result.steps >= 512


def test_a_module_that_cannot_be_imported_is_one_sentence_naming_it(tmp_path):
    result = autoreward("describe", "no_such_robot:PointGoal-v0", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "importing its module 'no_such_robot' failed (ModuleNotFoundError" in " ".join(result.stderr.split())
    result = autoreward("describe", "point_goal:NoSuchGoal-v0", cwd=tmp_path)
    assert result.returncode == 2 and "module 'point_goal' was imported, but it registers PointGoal-v0" in result.stderr


def _task_with(tmp_path: Path, env_kwargs: str = "", step: str | None = None, extras: str = "") -> Path:
    text = TASK_FILE.read_text()
    if step is not None:
        text = text.replace(text.split("step = ", 1)[1].split("\n", 1)[0], repr(step))
    text += f"\n[env_kwargs]\n{env_kwargs}\n" if env_kwargs else ""
    text += f"\n[extras]\n{extras}\n" if extras else ""
    path = tmp_path / "tasks" / "point_goal_reach.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_relative_model_path_is_found_beside_the_task_file_and_a_missing_one_is_named(tmp_path):
    shutil.copy(EXAMPLE / "point_goal" / "point_goal.xml", tmp_path / "tasks_model.xml")
    task_file = _task_with(tmp_path, 'xml_file = "../tasks_model.xml"')
    assert load_task_file(task_file).env_kwargs["xml_file"] == str((tmp_path / "tasks_model.xml").resolve())
    task_file = _task_with(tmp_path, 'xml_file = "./model.xml"')
    with pytest.raises(TaskError, match=r"\[env_kwargs\]: field 'xml_file' names './model.xml', which is not a file"):
        load_task_file(task_file)
    assert find_task("hopper_forward").env_kwargs == {}  # gymnasium's own models are untouched


@pytest.mark.parametrize(
    "change, field",
    [
        ({"step": "next_state.bodies.nose.pos[:, 0]"}, "[fitness]: field 'step' fails on real states"),
        ({"extras": 'target = "bodies.nose.pos"'}, "[extras]: extra 'target' = 'bodies.nose.pos' does not name"),
    ],
    ids=["fitness", "extras"],
)
def test_a_task_whose_own_fitness_or_extras_is_broken_is_refused_before_anything_runs(tmp_path, change, field):
    task_file = _task_with(tmp_path, **change)
    (tmp_path / "reward.py").write_text(REWARD)
    for args in (
        ["check", str(task_file), "--reward", "reward.py"],
        ["train", str(task_file), "--reward", "reward.py"],
        ["run", str(task_file), "--llm", "replay", "--transcript", "reward.py"],
    ):
        result = autoreward(*args, cwd=tmp_path)
        said = " ".join(result.stderr.split())
        assert result.returncode == 2 and "Traceback" not in result.stderr, said
        assert f"{task_file} {field}" in said and "there is no body named 'nose'" in said
        assert not (tmp_path / "runs").exists()


def test_a_broken_task_file_in_a_tasks_dir_spoils_only_itself(tmp_path):
    _task_with(tmp_path)  # tasks/point_goal_reach.toml, which is fine
    (tmp_path / "tasks" / "broken.toml").write_text('id = "broken"\nenv = "HalfCheetah-v5"\n')
    listed = autoreward("tasks", "--tasks-dir", "tasks", cwd=tmp_path)
    assert listed.returncode == 0 and "point_goal_reach" in listed.stdout
    assert "broken.toml" in listed.stderr and "description" in listed.stderr
    described = autoreward("describe", "point_goal_reach", "--tasks-dir", "tasks", cwd=tmp_path)
    assert described.returncode == 0 and "goal: Body" in described.stdout
    asked = autoreward("describe", "broken", "--tasks-dir", "tasks", cwd=tmp_path)
    assert asked.returncode == 2 and "broken.toml" in asked.stderr and "Traceback" not in asked.stderr


STEP_IT = """
import shutil, sys
from pathlib import Path
here, elsewhere = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copytree(here, elsewhere)  # another machine: nothing of the first folder's paths is needed
sys.path.insert(0, str(elsewhere))
import robot_reward
env = robot_reward.make_env()
env.reset(seed=0)
_, reward, _, _, info = env.step(env.action_space.sample())
print("stepped", round(reward, 6), sorted(info["reward_components"]), robot_reward.ENV_KWARGS["xml_file"].startswith(str(elsewhere)))
"""


def test_the_export_of_a_package_robot_imports_its_package_and_carries_its_model(tmp_path):
    from autoreward.records import ExportInfo
    from autoreward.review.export import write_reward_module

    (tmp_path / "models").mkdir()
    shutil.copy(EXAMPLE / "point_goal" / "point_goal.xml", tmp_path / "models" / "table.xml")
    task = load_task_file(_task_with(tmp_path, 'xml_file = "../models/table.xml"'))
    info = ExportInfo(run_id="r", model="m", created="2026-12-01", autoreward_version="0", algo="ppo", steps=1, seeds=1)
    module = write_reward_module(tmp_path / "export" / "robot_reward.py", task, REWARD, info)
    text = module.read_text()
    assert "import point_goal" in text and "pip install point-goal" in text
    assert str(tmp_path) not in text  # no absolute path of this machine
    assert (tmp_path / "export" / "robot_reward_assets" / "table.xml").is_file()
    blocker = tmp_path / "blocker" / "autoreward"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('an exported reward module must not need autoreward')\n")
    result = subprocess.run(
        [sys.executable, "-c", STEP_IT, tmp_path / "export", tmp_path / "elsewhere"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(blocker.parent)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("stepped -") and result.stdout.strip().endswith("['distance'] True")


@pytest.mark.slow  # a replayed one-round design run of the package robot, with its baselines: about a minute
def test_a_replayed_design_run_of_the_package_robot_ends_with_an_export(tmp_path):
    flags = ["run", str(TASK_FILE), "--llm", "replay", "--transcript", str(EXAMPLE / "transcript.md"), "--rounds", "1"]
    flags += ["--candidates", "2", "--steps", "1024", "--envs", "2", "--eval-episodes", "1", "--final-seeds", "1"]
    result = autoreward(*flags, "--workers", "2", "--no-videos", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = (tmp_path / "runs").glob("point_goal_reach__design*")
    module = run / "export" / "reward.py"
    assert "import point_goal" in module.read_text()
    assert "best" in result.stdout and "Traceback" not in result.stderr

    # The run's trained policy goes with the reward, and in a Python without autoreward it scores what the run
    # measured (its one final seed is the round's own training, whose folder the export reads).
    exported = autoreward("export", str(run), "-o", str(tmp_path / "mine" / "robot.py"), "--policy", cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "robot_policy.npz" in exported.stdout and "load_policy()" in exported.stdout
    assert (
        not (tmp_path / "mine" / "robot_vecnormalize.pkl").exists()
        or "VecNormalize.load" in (tmp_path / "mine" / "robot.py").read_text()
    )
    blocker = tmp_path / "blocker" / "autoreward"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('an exported reward module must not need autoreward')\n")
    watched = subprocess.run(
        [sys.executable, "-c", WATCH_IT, tmp_path / "mine"],
        env={**os.environ, "PYTHONPATH": str(blocker.parent), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert watched.returncode == 0, watched.stderr[-3000:]
    mean, recorded, seed, frames = watched.stdout.split()
    assert seed == "0" and mean == recorded  # bit for bit: the same policy, normalizer and held-out episodes
    assert int(frames) > 0


# Loads an exported module's policy in a fresh Python, scores it and plays one episode into frames.
WATCH_IT = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import robot
model, normalizer = robot.load_policy()
scores = robot.evaluate(model, normalizer)
(frames,) = robot.watch(model, normalizer, render_mode="rgb_array")
print(repr(float(np.mean(scores))), repr(robot.RECORDED_SCORES[robot.POLICY_SEED]), robot.POLICY_SEED, len(frames))
"""
