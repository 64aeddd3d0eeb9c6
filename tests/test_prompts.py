import pytest

from autoreward.errors import ExtractionError, PromptError
from autoreward.llm.extract import extract_program
from autoreward.llm.prompts import TEMPLATES, Prompts
from autoreward.loop.feedback import reflection_text
from autoreward.records import ComponentStats
from autoreward.task.describe import describe_task
from autoreward.task.files import find_task

from .review_fixtures import training

VARIABLES = {
    "designer_system": {"state_description": "class State: ...", "training": "How the policy will be trained: PPO."},
    "designer_system_progress": {"state_description": "class State: ...", "training": "PPO."},
    "designer_system_latent": {"state_description": "class State: ...", "training": "PPO."},
    "designer_request": {
        "task_description": "Run backwards.",
        "best_program": "",
        "best_round": 0,
        "feedback": "",
        "lessons": [],
    },
    "repair": {"category": "non_finite", "message": "NaN", "program": "def compute_reward(...): ..."},
    "reflection": {
        "steps": 1000,
        "episodes": 5,
        "fitness": 1.5,
        "higher_is_better": True,
        "episode_length": 1000.0,
        "curve": [1, 2],
        "components": {"forward": [ComponentStats(1.0, 0.0, 2.0)] * 2},
        "task_score_curve": [0.1, 0.5],
        "length_curve": [1000, 1000],
        "success_rate": 0.5,
        "returns": [{"name": "forward", "mean": 120.0, "share": 1.0}],
        "score_improved": False,
        "hacking": None,
    },
    "critic": {
        "task_description": "Run.",
        "state_description": "class State: ...",
        "program": "def f(): ...",
        "measured": {},
        "total_is_sum": None,
    },
    "analyzer": {
        "task_description": "Run.",
        "program": "def f(): ...",
        "trajectory_summary": "x rose 3 m",
        "frames": 0,
    },
    "judge": {
        "task_description": "Run.",
        "candidates": [{"id": "r1c0", "summary": "x rose"}, {"id": "r1c1", "summary": "x fell"}],
        "watched": True,
    },
    "task_score": {"env_id": "Hopper-v5", "task_description": "Hop.", "state_description": "class State: ..."},
    "task_score_repair": {"problem": "it has no [fitness] table"},
    "chat_revision": {
        "task_description": "run backwards",
        "turns": [{"number": 1, "asked": None, "outcome": "its task score was 0.5"}],
        "program": "def compute_reward(state, action, next_state): ...",
        "correction": "use less effort",
    },
    "preference": {
        "source": "human",
        "round": 1,
        "preferred_id": "r1c1",
        "shown": ["r1c0", "r1c1"],
        "rejected_id": "r1c0",
        "rejected_program": "def f(): ...",
        "pairs": [{"preferred": "r1c1", "rejected": "r1c0"}],
        "comment": "It flips over.",
    },
}


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_renders_with_its_variables(name):
    text = Prompts().render(name, **VARIABLES[name])
    assert text.strip()
    assert "{{" not in text and "{%" not in text


def test_a_missing_variable_is_an_error_not_a_blank():
    with pytest.raises(PromptError, match="needs a variable it was not given"):
        Prompts().render("repair", category="x", message="y")


def test_the_designer_sees_the_task_and_state_but_never_the_fitness():
    task = find_task("half_cheetah_backward")
    system = Prompts().render("designer_system", state_description=describe_task(task), training="PPO.")
    request = Prompts().render(
        "designer_request", **{**VARIABLES["designer_request"], "task_description": task.description}
    )
    text = system + request
    assert task.description in text and "class Bodies:" in text
    assert task.fitness.step not in text and task.fitness.description not in text


def test_reflection_shows_the_score_but_not_how_it_is_computed():
    task = find_task("half_cheetah_backward")
    assert "m/s" in task.fitness.description  # its unit is part of what must not reach the designer
    text = reflection_text(Prompts(), task, training(1.5))
    assert "Task score on held-out episodes: 1.5 (higher is better" in text
    assert task.fitness.description not in text and task.fitness.step not in text and "m/s" not in text
    hidden = reflection_text(Prompts(), task, training(1.5), show_score=False)  # a round judged by preference
    assert "1.5" not in hidden and "Task score" not in hidden


def test_a_user_folder_overrides_a_template(tmp_path):
    (tmp_path / "repair.j2").write_text("Fix {{ category }} please.")
    assert Prompts(tmp_path).render("repair", category="syntax") == "Fix syntax please.\n"
    assert "reward engineer" in Prompts(tmp_path).render("designer_system", state_description="s", training="t")
    with pytest.raises(PromptError, match="does not exist"):
        Prompts(tmp_path / "absent")
    (tmp_path / "critic.j2").write_text("{% if %}")
    with pytest.raises(PromptError, match="critic.j2, line 1"):
        Prompts(tmp_path).render("critic", **VARIABLES["critic"])


GOOD = "import numpy as np\n\ndef compute_reward(state, action, next_state):\n    return 0, {}\n"


@pytest.mark.parametrize(
    "reply",
    [
        f"Here is my reasoning.\n```python\n{GOOD}```\nDone.",
        f"```\n{GOOD}```",
        f"First try:\n```python\ndef helper(): pass\n```\nFinal:\n```python\n{GOOD}```",
        GOOD,
        f"```python\n{GOOD}",  # the closing fence was cut off
    ],
    ids=["fenced", "bare-fence", "last-defining-block", "raw-code", "unclosed-fence"],
)
def test_the_program_is_taken_from_the_reply(reply):
    assert extract_program(reply).strip() == GOOD.strip()


@pytest.mark.parametrize(
    "reply, message",
    [
        ("I cannot help with that.", "no python code block defining `compute_reward"),
        ("```javascript\nfunction compute_reward(s) { return 0; }\n```", "code in javascript, not Python"),
        ("```python\ndef compute_reward(state, action, next_state)\n    return 0\n```", "does not parse"),
        ("", "no python code block"),
    ],
    ids=["no-code", "other-language", "broken-python", "empty"],
)
def test_a_reply_without_a_program_gets_a_clear_error(reply, message):
    with pytest.raises(ExtractionError, match=message):
        extract_program(reply)


def test_reflection_under_preference_feedback_names_no_task_score():
    text = reflection_text(Prompts(), find_task("half_cheetah_backward"), training(1.5), show_score=False)
    assert "task score" not in text.lower()  # rendered by its real caller, as a preference round does
