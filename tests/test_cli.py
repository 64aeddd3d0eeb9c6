"""The command line as a user types it."""

import json

from typer.testing import CliRunner

from autoreward.cli import app

from .conftest import REPO

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
    assert len((run / "training" / "curve.jsonl").read_text().splitlines()) >= 10


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
