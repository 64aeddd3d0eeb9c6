import subprocess
import sys
import zipfile

import numpy as np
import pytest

from autoreward.errors import TaskError, UnknownEnvironmentError
from autoreward.task.files import find_task, load_task_file, load_tasks, parse_task, task_from_sentence

from .conftest import REPO

GOOD = """
id = "my_task"
env = "Hopper-v5"
description = "Hop."
[fitness]
step = "next_state.joints.rootx.qpos - state.joints.rootx.qpos"
reduce = "sum"
description = "distance, m"
"""

STANDARD_ENVS = {
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "Humanoid-v5",
    "Swimmer-v5",
    "Reacher-v5",
    "Pusher-v5",
    "InvertedDoublePendulum-v5",
}


def test_shipped_tasks_cover_the_standard_objectives_and_new_behaviours():
    tasks = load_tasks()
    assert len(tasks) >= 13
    assert {t.env_id for t in tasks.values()} >= STANDARD_ENVS
    for task in tasks.values():
        assert task.fitness is not None, task.id
        assert task.human_reward is not None, task.id
    novel = {"half_cheetah_backward", "hopper_in_place", "ant_walk_y", "walker_target_speed"}
    assert novel <= set(tasks)


def test_a_good_task_file_parses_with_defaults():
    task = parse_task(GOOD, "my.toml")
    assert task.id == "my_task" and task.env_id == "Hopper-v5"
    assert task.fitness.reduce == "sum" and task.budget.algo == "ppo"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("id = 'x'\nenv = ", "not valid TOML"),
        ("env = 'Hopper-v5'\ndescription = 'd'", "missing required field 'id'"),
        ("id = 'x'\nenv = 'Hopper-v5'\ndescription = 3", "field 'description' must be a string, got 3"),
        (
            "id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\ndescripton = 'e'",
            "unknown field 'descripton' (did you mean 'description'?)",
        ),
        (
            "id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\nsuccess_threshold = true",
            "field 'success_threshold' must be an integer or a number",
        ),
        (
            "id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\n[fitness]\nstep = '1'\nreduce = 'max'\ndescription = 'd'",
            "'reduce' must be 'mean', 'sum' or 'last'",
        ),
        (
            "id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\n[fitness]\nstep = 'next_state.('\nreduce = 'sum'\ndescription = 'd'",
            "field 'step' is not a valid Python expression",
        ),
        (
            "id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\n[fitness]\nstep = '1'",
            "[fitness]: missing required field 'reduce'",
        ),
        ("id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\n[budget]\nsteps = 0", "field 'steps' must be at least 1"),
        (
            "id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\n[budget]\nalgo = 'dqn'",
            "field 'algo' must be 'ppo' or 'sac'",
        ),
        ("id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\n[preview]\nsamples = 1", "[preview]: the planner needs at least 2"),
        ("id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\n[preview]\nnoise = 'wide'", "field 'noise' must be"),
        ("id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\n[preview]\nhorizons = 9", "unknown field 'horizons'"),
        ("id = 'x'\nenv = 'Hopper-v5'\ndescription = 'd'\nhuman_reward = 'missing.py'", "not a file"),
        ("id = 'Bad Id'\nenv = 'Hopper-v5'\ndescription = 'd'", "field 'id' must be lowercase"),
    ],
)
def test_malformed_task_files_name_the_file_and_the_field(text, expected):
    with pytest.raises(TaskError) as caught:
        parse_task(text, "broken.toml")
    assert "broken.toml" in str(caught.value)
    assert expected in str(caught.value)


def test_an_unknown_environment_suggests_close_names():
    with pytest.raises(UnknownEnvironmentError, match="did you mean Hopper-v5"):
        parse_task(GOOD.replace("Hopper-v5", "Hoper-v5"), "t.toml")


def test_extras_must_name_a_state_field(tmp_path):
    from autoreward.sim.state import StateLayout
    from autoreward.task.files import make_env

    task = parse_task(GOOD + "\n[extras]\ngoal = 'bodies.nowhere.pos'\n", "t.toml")
    with pytest.raises(TaskError, match="there is no body named 'nowhere'"):
        StateLayout.from_env(make_env(task), extras=task.extras)


def test_a_user_folder_adds_tasks_and_duplicate_ids_are_refused(tmp_path):
    (tmp_path / "mine.toml").write_text(GOOD)
    assert "my_task" in load_tasks([tmp_path])
    assert find_task("my_task", [tmp_path]).source.endswith("mine.toml")
    (tmp_path / "again.toml").write_text(GOOD)
    with pytest.raises(TaskError, match="defined twice"):
        load_tasks([tmp_path])


def test_a_task_file_can_be_named_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    assert find_task(str(path)).id == "my_task"
    with pytest.raises(TaskError, match="cannot read task file"):
        load_task_file(tmp_path / "absent.toml")


def test_unknown_task_names_suggest_close_ones():
    with pytest.raises(TaskError, match="did you mean hopper_forward"):
        find_task("hoper_forward")


def test_a_sentence_and_an_environment_make_a_task_without_fitness():
    task = task_from_sentence("Ant-v5", "walk along +y without flipping")
    assert task.fitness is None and task.env_id == "Ant-v5"
    assert task.description == "walk along +y without flipping"
    with pytest.raises(TaskError, match="empty"):
        task_from_sentence("Ant-v5", "  ")
    with pytest.raises(UnknownEnvironmentError):
        task_from_sentence("NoSuchEnv-v0", "walk")


@pytest.mark.slow
def test_the_wheel_ships_the_task_files_prompts_and_templates(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("autoreward-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "autoreward/envs/half_cheetah_forward.toml" in names
    assert "autoreward/envs/rewards/half_cheetah_v5.py" in names
    assert any(n.startswith("autoreward/prompts/") for n in names)
    assert "autoreward/review/templates/reward_module.py.j2" in names  # the export's module template


def test_a_task_file_sets_how_its_preview_plans_and_a_written_task_file_keeps_it():
    from autoreward.config import PlannerSettings
    from autoreward.loop.task_score import task_file_text

    assert parse_task(GOOD, "t.toml").planner == PlannerSettings()  # no [preview]: the defaults
    task = parse_task(GOOD + "\n[preview]\nhorizon = 60\nnoise = 1\n", "t.toml")
    assert task.planner == PlannerSettings(horizon=60, noise=1.0, samples=PlannerSettings().samples)
    assert parse_task(task_file_text(task), "again.toml").planner == task.planner
    assert "[preview]" not in task_file_text(parse_task(GOOD, "t.toml"))  # nothing written where nothing was set


def _mountain_car_episode(task, policy: str):
    """One episode of `task` on its sparse reward (what the progress form is paid beside its count bonus): the
    rewards step by step and the episode's record. "pump" pushes the way the car already rolls, which reaches
    the flag in a couple of swings; "still" never pushes."""
    from autoreward.sim.vec_env import EPISODE_INFO_KEY, make_vec_env

    env = make_vec_env(task, 1, 0, "sparse")
    obs, rewards = env.reset(), []
    for _ in range(task.max_episode_steps):
        action = np.where(obs[:, 1:2] >= 0, 1.0, -1.0) if policy == "pump" else np.zeros((1, 1))
        obs, reward, done, infos = env.step(action.astype(np.float32))
        rewards.append(float(reward[0]))
        if done[0]:
            env.close()
            return rewards, infos[0][EPISODE_INFO_KEY]
    raise AssertionError(f"{task.id}: the episode did not end in {task.max_episode_steps} steps")


def test_the_forms_benchmark_tasks_score_an_arrival_apart_from_a_car_that_stays_in_the_valley(jail):
    from autoreward.contract.checker import check_task

    sparse, final = find_task("mountain_car_sparse"), find_task("mountain_car_final_position")
    for task in (sparse, final):
        check_task(task, jail=jail)  # the fitness on real states, in a worker
    rewards, arrived = _mountain_car_episode(sparse, "pump")
    assert arrived.terminated and arrived.length < 300 and arrived.fitness == 1.0
    assert rewards[:-1] == [0.0] * (len(rewards) - 1) and rewards[-1] == 1.0  # nothing until the flag
    assert sparse.fitness.succeeded(arrived.fitness, sparse.success_threshold)
    rewards, stayed = _mountain_car_episode(sparse, "still")
    assert stayed.length == 300 and stayed.fitness == 0.0 and set(rewards) == {0.0}

    rewards, arrived = _mountain_car_episode(final, "pump")
    assert arrived.terminated and arrived.fitness >= 0.45 and rewards[-1] == arrived.fitness
    assert final.fitness.succeeded(arrived.fitness, final.success_threshold)
    rewards, stayed = _mountain_car_episode(final, "still")
    assert stayed.length == 300 and -0.7 < stayed.fitness < -0.3 and set(rewards[:-1]) == {0.0}
    assert not final.fitness.succeeded(stayed.fitness, final.success_threshold)
