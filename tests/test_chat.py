"""`autoreward chat`: a reward written, previewed by model-predictive control, corrected in words and trained, turn
by turn, every turn kept in the run folder so that a session resumes and replays."""

from dataclasses import replace

import pytest
from typer.testing import CliRunner

import autoreward
from autoreward.cli import app
from autoreward.config import PlannerSettings
from autoreward.serialize import read_json

from .conftest import SHORT_TASK

runner = CliRunner()

FORWARD_PENALTY = "forward = -(next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt"


def _reward(lines: str) -> str:
    return (
        "I reward running backwards.\n\n```python\nimport numpy as np\n\n"
        "def compute_reward(state, action, next_state):\n"
        f"    {lines}\n"
        "    return forward + effort, {'backward': forward, 'effort': effort}\n```\n"
    )


# Turn 1 runs backwards; "use less effort" asks for a smaller effort weight; "faster" for a larger speed weight.
TRANSCRIPT = f"""
<!-- reply r1/c0/designer -->
{_reward(FORWARD_PENALTY + chr(10) + "    effort = -0.1 * np.sum(action ** 2, axis=1)")}
<!-- reply r2/c0/designer -->
{_reward(FORWARD_PENALTY + chr(10) + "    effort = -0.5 * np.sum(action ** 2, axis=1)")}
<!-- reply r3/c0/designer -->
{_reward(FORWARD_PENALTY.replace("= -(", "= -2 * (") + chr(10) + "    effort = -0.5 * np.sum(action ** 2, axis=1)")}
<!-- reply r*/c0/critic* -->
VERDICT: ACCEPT
- It rewards speed towards -x and charges for effort.
"""


@pytest.fixture()
def short_task(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cheetah_back_short.toml").write_text(SHORT_TASK)
    task = autoreward.load_task("cheetah_back_short", [tmp_path / "tasks"])
    return replace(task, planner=PlannerSettings(horizon=6, samples=4, knots=3))


@pytest.fixture()
def transcript(tmp_path):
    path = tmp_path / "session.md"
    path.write_text(TRANSCRIPT)
    return path


class Person:
    """Says its lines in order after each turn, and keeps what it was shown."""

    def __init__(self, *lines):
        self.lines = list(lines)
        self.shown = []

    def __call__(self, turn, preview):
        self.shown.append((turn, preview))
        return self.lines.pop(0)


def test_two_corrections_then_train_go_to_the_designer_and_end_in_a_training(short_task, transcript, tmp_path):
    person = Person("use less effort", "faster", "train")
    llm = autoreward.LLMSettings(backend="replay", transcript=str(transcript))
    result = autoreward.chat(short_task, person, llm=llm, runs_dir=tmp_path / "runs", videos=False)

    assert [t.candidate_id for t in result.turns] == ["r1c0", "r2c0", "r3c0"]
    assert [t.reply for t in result.turns] == ["use less effort", "faster", "train"]
    assert all(t.ready and t.previewed for t in result.turns)
    # The person saw each turn's preview: one planned episode, scored on the task score.
    assert all(preview is not None and preview.evaluation.episodes[0].length == 40 for _, preview in person.shown)
    # Each correction went to the designer with the conversation so far and the latest reward.
    second = (result.folder / "calls" / "r2__c0__designer.md").read_text()
    assert 'The person now says: "use less effort"' in second and "-0.1 * np.sum(action" in second
    third = (result.folder / "calls" / "r3__c0__designer.md").read_text()
    assert 'Turn 2, after the person said "use less effort"' in third and 'now says: "faster"' in third
    assert "its task score was" in third and "your reward returned" in third
    # "train" trained the latest reward, as a run's candidate is trained.
    assert result.trained.id == "r3c0" and result.trained.status == "trained" and result.score is not None
    assert (result.folder / "round_3" / "r3c0" / "training" / "training.json").is_file()
    assert autoreward.Run.open(result.folder).status == "finished"


def test_a_session_resumes_where_it_stopped_and_replays_from_its_own_folder(short_task, transcript, tmp_path):
    llm = autoreward.LLMSettings(backend="replay", transcript=str(transcript))

    class Leaves(Person):
        def __call__(self, turn, preview):
            if not self.lines:
                raise autoreward.AutorewardError("the person left")
            return super().__call__(turn, preview)

    with pytest.raises(autoreward.AutorewardError, match="the person left"):
        autoreward.chat(short_task, Leaves("use less effort"), llm=llm, runs_dir=tmp_path / "runs", videos=False)
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("cheetah_back_short__chat__s0__")
    assert [t["reply"] for t in read_json(folder / "chat.json")["turns"]] == ["use less effort", None]

    # Resumed: turn 2 is read back (no LLM call, no new preview), the person is asked only what they had not said.
    previews_before = sorted(p.stat().st_mtime_ns for p in folder.rglob("preview/preview.json"))
    person = Person("quit")
    resumed = autoreward.chat(person=person, resume=folder, runs_dir=tmp_path / "runs")
    assert [t.reply for t in resumed.turns] == ["use less effort", "quit"] and resumed.trained is None
    assert [turn.number for turn, _ in person.shown] == [2]
    assert sorted(p.stat().st_mtime_ns for p in folder.rglob("preview/preview.json")) == previews_before

    # The folder's own transcript, and the person's words from chat.json, replay the whole session elsewhere.
    said = [t.reply for t in resumed.turns]
    own = autoreward.LLMSettings(backend="replay", transcript=str(folder / "transcript.md"))
    again = autoreward.chat(short_task, Person(*said), llm=own, runs_dir=tmp_path / "again", videos=False)
    first_code = (folder / "calls" / "r2__c0__designer.md").read_text().split("## reply")[1]
    assert first_code == (again.folder / "calls" / "r2__c0__designer.md").read_text().split("## reply")[1]


def test_a_task_without_a_model_or_a_person_is_one_sentence(tmp_path):
    with pytest.raises(autoreward.AutorewardError, match="has no MuJoCo model, and a preview plans on one"):
        autoreward.chat(autoreward.load_task("mountain_car_quick"), Person("quit"), runs_dir=tmp_path)
    with pytest.raises(autoreward.AutorewardError, match="a chat needs someone to answer"):
        autoreward.chat(autoreward.load_task("mountain_car_quick"), runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # no run folder was made


def test_the_command_takes_the_answers_from_a_file_and_a_short_file_stops_in_one_sentence(transcript, tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cheetah_back_short.toml").write_text(
        SHORT_TASK + "\n[preview]\nhorizon = 6\nsamples = 4\nknots = 3\n"
    )
    common = ["--tasks-dir", str(tmp_path / "tasks"), "--runs-dir", str(tmp_path / "runs"), "--no-videos"]
    replay = ["--llm", "replay", "--transcript", str(transcript)]
    short = tmp_path / "short.txt"
    short.write_text("use less effort\n")
    stopped = runner.invoke(app, ["chat", "cheetah_back_short", *common, *replay, "--person", str(short)])
    assert stopped.exit_code == 2 and "Traceback" not in stopped.output, stopped.output
    assert "the answers end before turn 2 does" in " ".join(stopped.output.split())
    (folder,) = (tmp_path / "runs").iterdir()
    rest = tmp_path / "rest.txt"
    rest.write_text("# after turn 2\nfaster\ntrain\n")
    resumed = runner.invoke(app, ["chat", "--resume", str(folder), "--person", str(rest), "--runs-dir", str(tmp_path)])
    assert resumed.exit_code == 0, resumed.output
    said = " ".join(resumed.output.split())
    assert "turn 3 (r3c0): task score" in said and "r3c0 trained: task score" in said
    assert [t["reply"] for t in read_json(folder / "chat.json")["turns"]] == ["use less effort", "faster", "train"]
    missing = runner.invoke(app, ["chat", "cheetah_back_short", *common, "--person", str(tmp_path / "none.txt")])
    assert missing.exit_code == 2 and "cannot read the answers in" in missing.output


def test_a_turns_preview_video_is_on_the_review_page(short_task, transcript, tmp_path):
    import http.client

    llm = autoreward.LLMSettings(backend="replay", transcript=str(transcript))
    result = autoreward.chat(short_task, Person("quit"), llm=llm, runs_dir=tmp_path / "runs")
    film = result.folder / "round_1" / "r1c0" / "preview" / "evaluation" / "video.mp4"
    assert film.stat().st_size > 0
    server = autoreward.ReviewServer(tmp_path / "runs", "127.0.0.1", 0).start()
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", f"/runs/{result.folder.name}/", headers={"Host": f"127.0.0.1:{port}"})
        page = connection.getresponse().read().decode()
        assert f"/runs/{result.folder.name}/video/r1c0" in page
        connection.request("GET", f"/runs/{result.folder.name}/video/r1c0", headers={"Host": f"127.0.0.1:{port}"})
        response = connection.getresponse()
        assert response.status == 200 and response.read() == film.read_bytes()
        connection.close()
    finally:
        server.close()
