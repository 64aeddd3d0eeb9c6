"""The command line as a user types it."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from autoreward.cli import app
from autoreward.loop.run_store import _start_ticks, run_summary, this_process
from autoreward.review.views import run_view
from autoreward.serialize import write_json

from .conftest import REPO, run_autoreward
from .review_fixtures import make_run

runner = CliRunner()


def test_tasks_lists_the_shipped_tasks():
    result = runner.invoke(app, ["tasks"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "half_cheetah_backward" in result.output and "InvertedDoublePendulum-v5" in result.output


def test_describe_prints_a_stub_naming_bodies_and_joints():
    result = runner.invoke(app, ["describe", "HalfCheetah-v5"])
    assert result.exit_code == 0
    assert "class Bodies:" in result.output and "bthigh: Body" in result.output and "rootx: SlideJoint" in result.output


def test_unknown_names_get_one_clear_sentence_and_exit_2():
    result = runner.invoke(app, ["describe", "HalfCheeta-v5"])
    assert result.exit_code == 2
    assert "unknown environment 'HalfCheeta-v5'" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["describe", "no_such_task"])
    assert result.exit_code == 2 and "unknown task" in result.output


def test_check_reports_the_category_and_fails(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\ndef compute_reward(state, action, next_state):\n    return 0\n")
    result = runner.invoke(app, ["check", "half_cheetah_forward", "--reward", str(bad)])
    assert result.exit_code == 1 and "check failed (forbidden)" in result.output
    result = runner.invoke(
        app, ["check", "half_cheetah_backward", "--reward", str(REPO / "examples/half_cheetah_backward.py")]
    )
    assert result.exit_code == 0 and "check passed" in result.output
    result = runner.invoke(app, ["check", "half_cheetah_forward", "--reward", str(tmp_path / "absent.py")])
    assert result.exit_code == 2 and "cannot read reward file" in result.output


def test_train_writes_a_run_folder_with_scores(tmp_path):
    args = [
        "train",
        "half_cheetah_backward",
        "--reward",
        str(REPO / "examples/half_cheetah_backward.py"),
        "--steps",
        "1024",
        "--envs",
        "2",
        "--eval-episodes",
        "1",
        "--runs-dir",
        str(tmp_path),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.iterdir() if "__train__" in p.name]
    summary = json.loads((run / "result.json").read_text())
    assert summary["task"] == "half_cheetah_backward" and summary["fitness"] is not None
    assert (run / "reward.py").read_text() == (REPO / "examples/half_cheetah_backward.py").read_text()
    assert json.loads((run / "check.json").read_text())["category"] == "ok"
    assert len((run / "training" / "learner" / "curve.jsonl").read_text().splitlines()) >= 10


@pytest.mark.slow  # two trainings of 1024 steps: about 30 s
def test_baseline_trains_both_baselines_once_and_reads_them_back(tmp_path):
    args = ["baseline", "half_cheetah_backward", "--steps", "1024", "--envs", "2", "--eval-episodes", "1"]
    args += ["--runs-dir", str(tmp_path)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    scores = json.loads(first.output.strip().splitlines()[-1])
    assert set(scores) == {"human", "sparse"} and all(isinstance(v, float) for v in scores.values())
    (folder,) = [p for p in tmp_path.rglob("baselines.json")]
    again = runner.invoke(app, args)  # read back, not trained again
    assert again.exit_code == 0 and json.loads(again.output.strip().splitlines()[-1]) == scores
    assert [p for p in tmp_path.rglob("baselines.json")] == [folder]
    refused = runner.invoke(app, [*args[:2], "--steps", "0"])
    assert refused.exit_code == 2 and "--steps must be at least 1, got 0" in refused.output


def test_train_refuses_a_failing_reward_before_training(tmp_path):
    bad = tmp_path / "nan.py"
    bad.write_text(
        "import numpy as np\ndef compute_reward(state, action, next_state):\n"
        "    v = np.sqrt(next_state.qvel[:, 0] * 0.0 - 1.0)\n    return v, {'v': v}\n"
    )
    result = runner.invoke(
        app, ["train", "hopper_forward", "--reward", str(bad), "--steps", "512", "--runs-dir", str(tmp_path / "runs")]
    )
    assert result.exit_code == 1 and "non_finite" in result.output
    (run,) = (tmp_path / "runs").iterdir()
    assert not (run / "training").exists()


def test_bad_training_options_are_refused(tmp_path):
    args = [
        "train",
        "hopper_forward",
        "--reward",
        str(REPO / "envs/rewards/hopper_v5.py"),
        "--algo",
        "dqn",
        "--runs-dir",
        str(tmp_path),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--algo must be 'ppo' or 'sac'" in result.output


def test_a_loop_note_prints_brackets_from_llm_text_as_they_are(capsys):
    from autoreward.cli.run_commands import ConsoleProgress

    # "[/x]" is a rich closing tag that matches nothing: printed as markup it raises, and "[bold]" would vanish.
    ConsoleProgress(bars=None).note("r1c0: check failed: state.qpos[/x] is not a field; [bold]see[/bold] x[0]")
    printed = " ".join(capsys.readouterr().out.split())
    assert "state.qpos[/x] is not a field; [bold]see[/bold] x[0]" in printed


@pytest.mark.parametrize(
    "args",
    [
        ["describe", "LunarLander-v3"],
        ["check", "LunarLander-v3", "--reward", "reward.py"],
        ["train", "LunarLander-v3", "--reward", "reward.py"],
        ["run", "--env", "LunarLander-v3", "land softly", "--llm", "replay", "--transcript", "reward.py"],
    ],
    ids=["describe", "check", "train", "run"],
)
def test_an_environment_whose_package_is_missing_is_one_sentence_naming_it_and_leaves_no_run_folder(tmp_path, args):
    (tmp_path / "reward.py").write_text("def compute_reward(state, action, next_state):\n    return 0, {}\n")
    # Box2D as it is on a machine without it (setup.sh installs it here): its import fails.
    blocker = tmp_path / "without_box2d" / "Box2D"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError(\"No module named 'Box2D'\", name='Box2D')\n")
    result = run_autoreward(*args, cwd=tmp_path, environment={"PYTHONPATH": str(blocker.parent)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "LunarLander-v3 needs a package that is not installed: Box2D is not installed" in result.stderr
    assert 'pip install "gymnasium[box2d]"' in result.stderr
    assert not (tmp_path / "runs").exists()


LONG_NAME = "cheetah_back_short__design__s0__20261201-151809-a-name-longer-than-a-terminal-column-allows"


def test_runs_prints_whole_names_and_show_takes_a_name_as_runs_prints_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path / "runs", name=LONG_NAME)
    listed = runner.invoke(app, ["runs"], env={"COLUMNS": "80"})
    assert listed.exit_code == 0 and LONG_NAME in listed.output
    shown = runner.invoke(app, ["show", LONG_NAME], env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    assert "Reward report: half_cheetah_backward" in shown.output


def test_a_run_whose_process_died_says_so_in_runs_show_and_the_page(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = make_run(tmp_path / "runs", name="dead")
    store.mark_running()  # this test's own process: alive
    assert run_summary(store.path).status == "running"
    # A process that has ended: its pid's start time no longer matches (or the pid is gone).
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    record = this_process() | {"pid": finished.pid, "started": _start_ticks(finished.pid)}
    finished.wait()
    write_json(store.path / "orchestrator.json", record)
    assert run_summary(store.path).status == "stopped (process gone)"
    assert "stopped (process gone)" in runner.invoke(app, ["runs"], env={"COLUMNS": "200"}).output
    assert "status: stopped (process gone)" in runner.invoke(app, ["show", "dead"]).output
    assert run_view(store.path)["status"] == "stopped (process gone)"
    store.set_status("finished")  # a run that ended says so, whatever became of its process
    assert run_summary(store.path).status == "finished"


def test_the_progress_bar_never_shows_more_steps_than_its_total(monkeypatch):
    import io

    from rich.console import Console

    from autoreward.cli import options

    shown = io.StringIO()
    monkeypatch.setattr(options, "console", Console(file=shown, width=120))
    with options._progress_bars() as handle:  # PPO finishes its last rollout past a 60 000-step budget
        handle("human s0", {"stage": "training", "step": 30720, "total": 60000})
        handle("human s0", {"stage": "training", "step": 61440, "total": 60000})
    assert "61440/61440 steps" in shown.getvalue() and "/60000" not in shown.getvalue()
