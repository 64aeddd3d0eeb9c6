"""`autoreward preview`: one episode planned by model-predictive control on a reward, in jailed workers, scored
on the task score by a worker that replays the planned actions and never loads the reward program."""

import numpy as np
import pytest
from typer.testing import CliRunner

import autoreward
from autoreward.cli import app
from autoreward.config import PlannerSettings
from autoreward.contract import reward_program
from autoreward.errors import WorkerError
from autoreward.loop.evaluation import EVALUATION_SEED_BASE
from autoreward.loop.preview import _checked_actions
from autoreward.serialize import read_json
from autoreward.sim.predictive_sampling import PredictiveSampler
from autoreward.sim.state import StateLayout, read_only
from autoreward.task.files import make_env

from .conftest import REPO, SHORT_TASK

BACKWARD = (REPO / "examples/half_cheetah_backward.py").read_text()
QUICK = {"horizon": 10, "samples": 8, "knots": 3}
runner = CliRunner()


@pytest.fixture()
def short_task(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cheetah_back_short.toml").write_text(SHORT_TASK)
    return autoreward.load_task("cheetah_back_short", [tmp_path / "tasks"])


def _planned_here(task, seed: int) -> float:
    """The task score of the episode the planner plans, played here on a gymnasium environment."""
    env = make_env(task)
    base = env.unwrapped
    function = reward_program.load(BACKWARD)
    layout = StateLayout.from_env(env, extras=task.extras)
    reward = lambda s, a, n: function(s, read_only(a), n)  # noqa: E731
    planner = PredictiveSampler(base.model, layout, reward, int(base.frame_skip), PlannerSettings(**QUICK), seed)
    env.reset(seed=EVALUATION_SEED_BASE)
    start, steps = float(base.data.qpos[0]), 0
    for _ in range(task.max_episode_steps):
        env.step(planner.plan(base.data.qpos.copy(), base.data.qvel.copy()).astype(np.float32))
        steps += 1
    end, dt = float(base.data.qpos[0]), base.dt
    env.close()
    return -(end - start) / (steps * dt)


def test_a_preview_is_the_planned_episode_scored_apart_from_the_reward(short_task, tmp_path):
    previewed = autoreward.preview(short_task, BACKWARD, seed=3, runs_dir=tmp_path / "runs", **QUICK)
    folder = previewed.folder
    assert folder.name.startswith("cheetah_back_short__preview__s3__")
    for name in ("reward.py", "config.json", "check.json", "result.json", "preview/planning/actions.npz"):
        assert (folder / name).is_file(), name
    assert (folder / "preview" / "evaluation" / "video.mp4").stat().st_size > 0
    episode = previewed.preview.evaluation.episodes[0]
    assert episode.length == 40 and previewed.check.ok
    # The replay worker's score is the score of the episode the planner planned (MuJoCo is deterministic)...
    assert previewed.score == pytest.approx(_planned_here(short_task, 3), abs=1e-9)
    # ...and the planner on a backward reward runs backwards.
    assert previewed.score > 0.2
    assert set(episode.component_returns) and sum(episode.component_returns.values()) == pytest.approx(
        episode.reward_return
    )
    summary = read_json(folder / "result.json")
    assert summary["fitness"] == previewed.score and summary["video"] == "preview/evaluation/video.mp4"


def test_a_preview_plans_as_its_task_file_says_unless_told_otherwise(short_task, tmp_path):
    from dataclasses import replace

    planned = replace(short_task, planner=PlannerSettings(horizon=7, samples=5, noise=0.5, knots=3))
    previewed = autoreward.preview(planned, BACKWARD, samples=4, videos=False, runs_dir=tmp_path / "runs")
    assert previewed.preview.planner == PlannerSettings(horizon=7, samples=4, noise=0.5, knots=3)
    assert read_json(previewed.folder / "config.json")["planner"]["samples"] == 4


def test_the_command_previews_and_refuses_in_one_sentence(short_task, tmp_path):
    reward = tmp_path / "backward.py"
    reward.write_text(BACKWARD)
    common = ["--reward", str(reward), "--tasks-dir", str(tmp_path / "tasks"), "--runs-dir", str(tmp_path / "runs")]
    shown = runner.invoke(app, ["preview", "cheetah_back_short", *common, "--horizon", "6", "--samples", "4"])
    assert shown.exit_code == 0, shown.output
    assert "task score" in shown.output and "reward return" in shown.output and "Traceback" not in shown.output
    no_model = runner.invoke(app, ["preview", "mountain_car_quick", *common])
    assert no_model.exit_code == 2 and "has no MuJoCo model, and a preview plans on one" in no_model.output
    one_sample = runner.invoke(app, ["preview", "cheetah_back_short", *common, "--samples", "1"])
    assert one_sample.exit_code == 2 and "needs at least 2 samples" in one_sample.output
    broken = tmp_path / "broken.py"
    broken.write_text("def compute_reward(state, action, next_state):\n    return 1\n")
    failed = runner.invoke(app, ["preview", "cheetah_back_short", *common[2:], "--reward", str(broken)])
    assert failed.exit_code == 1 and "check failed" in failed.output


@pytest.mark.parametrize(
    "arrays, words",
    [
        ({"actions": np.full((5, 6), np.nan, np.float32)}, "not all finite"),
        ({"actions": np.zeros((5, 2), np.float32)}, "have shape (5, 2), not (steps, 6)"),
        ({"actions": np.zeros((0, 6), np.float32)}, "have shape (0, 6)"),
        ({"other": np.zeros((5, 6))}, "could not be read"),
        ({"actions": np.array(["a", "b"])}, "have shape (2,)"),
    ],
)
def test_the_replay_refuses_planned_actions_that_are_not_a_finite_array(tmp_path, arrays, words):
    np.savez(tmp_path / "actions.npz", **arrays)
    with pytest.raises(WorkerError, match="planned actions") as refused:
        _checked_actions(tmp_path / "actions.npz", (6,))
    assert words in str(refused.value)


def test_a_pickled_action_file_is_not_unpickled(tmp_path):
    np.save(tmp_path / "actions.npy", np.array([object()], dtype=object), allow_pickle=True)
    (tmp_path / "actions.npy").rename(tmp_path / "actions.npz")
    with pytest.raises(WorkerError, match="could not be read"):
        _checked_actions(tmp_path / "actions.npz", (6,))
