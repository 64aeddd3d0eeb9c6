"""The reward forms (issue 27): a progress program with count bonuses, a latent program with a fitted return
decomposition, each checked, trained and scored on the trusted task score; a run that mixes forms."""

from __future__ import annotations

import numpy as np
import pytest

from autoreward.config import LoopConfig, TrainingConfig
from autoreward.contract.checker import check_program
from autoreward.contract.forms import with_signature
from autoreward.contract.reward_program import program_form, static_check
from autoreward.errors import ExtractionError, TaskError, WorkerError
from autoreward.llm.extract import extract_program
from autoreward.llm.prompts import Prompts
from autoreward.loop.design import CandidateDesigner, DesignBrief
from autoreward.loop.feedback import reflection_text
from autoreward.loop.runner import Runner
from autoreward.loop.training import train
from autoreward.records import CheckCategory
from autoreward.sim.reward_forms import LatentDecomposition, ProgressCounts, fitted_weights
from autoreward.task.describe import describe_task
from autoreward.task.files import find_task, task_from_sentence

PROGRESS = """
import numpy as np


def compute_progress(state, action, next_state):
    height = np.clip((next_state.obs.position + 1.2) / 1.65, 0.0, 1.0)
    speed = np.clip(np.abs(next_state.obs.velocity) / 0.07, 0.0, 1.0)
    return {"height": height, "speed": speed}
"""

LATENT = """
import numpy as np


def compute_latent(state, action, next_state):
    climb = (next_state.obs.position - state.obs.position) * 100.0
    speed = np.abs(next_state.obs.velocity) * 10.0
    effort = np.square(action[:, 0])
    return {"climb": climb, "speed": speed, "effort": effort}
"""

TINY = TrainingConfig(steps=1024, n_envs=2, eval_episodes=2, curve_points=2, video=False)


@pytest.fixture(scope="module")
def car():
    return find_task("mountain_car_quick")


def _with_body(entry: str, body: str) -> str:
    return f"import numpy as np\n\n\ndef {entry}(state, action, next_state):\n" + "".join(
        f"    {line}\n" for line in body.strip().splitlines()
    )


# --- the form of a program, and the static rules ---------------------------------------------------


def test_a_programs_form_is_the_function_it_defines():
    assert program_form(PROGRESS) == "progress" and program_form(LATENT) == "latent"
    assert program_form("def compute_reward(state, action, next_state): pass") == "reward"
    assert static_check(PROGRESS).ok and static_check(LATENT, "latent").ok


def test_a_program_of_another_form_than_asked_or_of_two_forms_is_refused_in_one_sentence():
    wrong = static_check(LATENT, "progress")
    assert wrong.category is CheckCategory.SIGNATURE
    assert "no top-level function `compute_progress`" in wrong.message and "`compute_latent`" in wrong.message
    both = static_check(PROGRESS + LATENT)
    assert both.category is CheckCategory.SIGNATURE and "exactly one of" in both.message


def test_the_reply_is_taken_for_the_form_asked():
    reply = f"Two stages.\n\n```python\n{PROGRESS}```\n"
    assert "def compute_progress" in extract_program(reply, "progress")
    with pytest.raises(ExtractionError, match="no python code block defining `compute_latent"):
        extract_program(reply, "latent")


def test_the_designer_of_each_form_reads_its_own_prompt_and_function(car):
    description = describe_task(car)
    assert description.rstrip().splitlines()[-2].startswith("def compute_reward(")
    for form, entry, words in (
        ("progress", "compute_progress", "progress functions"),
        ("latent", "compute_latent", "latent reward terms"),
    ):
        designer = CandidateDesigner(None, Prompts(), car, LoopConfig())
        system, request = designer.first_messages(DesignBrief(car.description, description), form)
        assert words in system.content and f"def {entry}(state: State" in system.content
        assert "def compute_reward(" not in system.content
        assert with_signature(description, form) in system.content
        assert {"progress": "progress function", "latent": "set of latent terms"}[form] in request.content


# --- the active check --------------------------------------------------------------------------


def test_progress_and_latent_programs_pass_their_check_with_their_terms_measured(car, tmp_path, jail):
    progress = check_program(car, PROGRESS, tmp_path / "p", jail=jail)
    assert progress.ok, progress.message
    assert progress.components == ("height", "speed") and "2 progress estimates" in progress.message
    assert 0.0 <= progress.component_stats["height"].min <= progress.component_stats["height"].max <= 1.0
    latent = check_program(car, LATENT, tmp_path / "l", jail=jail)
    assert latent.ok and latent.components == ("climb", "speed", "effort")


@pytest.mark.parametrize(
    "entry, body, category, words",
    [
        (
            "compute_progress",
            "return {'height': (next_state.obs.position + 1.2) * 3.0}",
            CheckCategory.OUT_OF_RANGE,
            "progress 'height' ranges over",
        ),
        (
            "compute_latent",
            "return {'alive': np.ones(state.batch_size), 'x': next_state.obs.position}",
            CheckCategory.WRONG_OUTPUT,
            "latent term 'alive' is 1 on every one",
        ),
        ("compute_progress", "return next_state.obs.position", CheckCategory.WRONG_OUTPUT, "compute_progress returned"),
        (
            "compute_latent",
            "return {'x': next_state.obs.position, 'bad': np.log(-1.0 + 0 * state.obs.position)}",
            CheckCategory.NON_FINITE,
            "component 'bad' is NaN",
        ),
    ],
)
def test_a_broken_progress_or_latent_program_gets_its_category_and_a_sentence(
    car, tmp_path, jail, entry, body, category, words
):
    result = check_program(car, _with_body(entry, body), tmp_path, jail=jail)
    assert result.category is category and words in result.message, result.message


def test_a_task_without_a_task_score_cannot_train_a_progress_or_latent_program(tmp_path, jail):
    words = task_from_sentence("MountainCarContinuous-v0", "reach the flag")
    result = check_program(words, PROGRESS, tmp_path, jail=jail)
    assert result.category is CheckCategory.SIGNATURE and "has no task score ([fitness])" in result.message
    with pytest.raises(TaskError, match="has no task score"):
        train(words, TINY, tmp_path / "t", LATENT, runner=Runner.connect(jail=jail))


# --- the training rewards, on numbers --------------------------------------------------------------


def _terms(values):
    """A terms function returning the given (N, D) array as named terms."""
    return lambda state, action, next_state: (None, {f"t{i}": values[:, i] for i in range(values.shape[1])})


def test_the_count_bonus_is_beta_over_the_root_of_the_visits_to_each_bin():
    progress = np.array([[0.05, 0.5], [0.06, 0.5], [0.95, 1.0]])
    counts = ProgressCounts(_terms(progress), n_envs=3, bins=10, beta=0.2)
    sparse = np.array([0.0, 0.0, 1.0])
    total, parts = counts(None, None, None, sparse)
    # The first two rows share a bin (levels 0 and 5): visits 1 then 2; the last row (1.0 is the top level) is new.
    np.testing.assert_allclose(parts["count_bonus"], [0.2, 0.2 / np.sqrt(2), 0.2])
    np.testing.assert_allclose(total, sparse + parts["count_bonus"])
    counts(None, None, None, sparse)
    assert sorted(counts.counts.values()) == [2, 4] and counts.report().bins_visited == 2
    again = ProgressCounts(_terms(progress), n_envs=3, bins=10, beta=0.2)
    again.load_arrays(counts.arrays())
    assert again.counts == counts.counts and again.report() == counts.report()


def test_a_progress_outside_its_range_in_training_ends_it_with_a_sentence():
    counts = ProgressCounts(_terms(np.array([[1.5]])), n_envs=1, bins=10, beta=0.1)
    with pytest.raises(Exception, match=r"progress 't0' reached 1\.5, outside \[0, 1\]"):
        counts(None, None, None, np.zeros(1))


def test_the_return_decomposition_finds_the_weights_that_explain_the_scores():
    rng = np.random.default_rng(0)
    sums = rng.normal(size=(40, 3))
    np.testing.assert_allclose(fitted_weights(sums, sums @ np.array([2.0, -1.0, 0.0])), [2.0, -1.0, 0.0], atol=1e-2)

    steps = np.array([[1.0, 0.0], [0.0, 1.0]])  # two environments, each paying one term a step
    latent = LatentDecomposition(_terms(steps), n_envs=2, episodes=8)
    total, _ = latent(None, None, None, np.zeros(2))
    np.testing.assert_array_equal(total, [0.0, 0.0])  # nothing fitted before an episode ends
    for _ in range(2):
        latent(None, None, None, np.zeros(2))
    latent.episodes_ended([0, 1], [6.0, -3.0])  # three steps each: weights 2 and -1
    total, credit = latent(None, None, None, np.zeros(2))
    np.testing.assert_allclose(total, [2.0, -1.0], atol=1e-2)
    np.testing.assert_allclose(credit["t0"], [2.0, 0.0], atol=1e-2)
    report = latent.report()
    assert report.episodes_fitted == 2 and [round(t.weight, 2) for t in report.terms] == [2.0, -1.0]


# --- real trainings ------------------------------------------------------------------------------


def test_a_progress_program_trains_on_the_sparse_reward_and_its_count_bonus(car, tmp_path, jail):
    result = train(car, TINY, tmp_path, PROGRESS, runner=Runner.connect(jail=jail))
    assert result.form == "progress" and result.evaluation.fitness_mean is not None
    report = result.form_report
    assert report.bins == 5 and report.beta == 0.1 and 1 < report.bins_visited <= 25
    assert [t.name for t in report.terms] == ["height", "speed"]
    assert all(0.0 <= t.low <= t.high <= 1.0 for t in report.terms)
    assert set(result.curve[-1].components) == {"sparse", "count_bonus"}
    assert result.curve[-1].components["sparse"].max == -1.0  # mountain_car_quick: -1 a step until the flag
    # The designer reads each estimate's range and the bins visited.
    text = reflection_text(Prompts(), car, result)
    assert f"it visited {report.bins_visited} of the 25 bins" in text and "- height: [" in text
    assert "go through the progress estimates one by one" in text


def test_a_latent_program_trains_on_its_fitted_decomposition_and_reports_the_weights(car, tmp_path, jail):
    result = train(car, TINY, tmp_path, LATENT, runner=Runner.connect(jail=jail))
    assert result.form == "latent" and result.evaluation.fitness_mean is not None
    report = result.form_report
    assert [t.name for t in report.terms] == ["climb", "speed", "effort"]
    assert report.episodes_fitted >= 2 and any(t.weight != 0.0 for t in report.terms)
    assert set(result.curve[-1].components) == {"climb", "speed", "effort"}
    text = reflection_text(Prompts(), car, result)
    weight = report.terms[0].weight
    assert f"- climb: weight {weight:.3g}, range [" in text and f"({report.episodes_fitted} episodes in all)" in text


def test_a_slice_of_a_progress_training_continues_its_counts(car, tmp_path, jail):
    runner = Runner.connect(jail=jail)
    first = train(car, TINY, tmp_path / "a", PROGRESS, runner=runner, until=512)
    second = train(car, TINY, tmp_path / "b", PROGRESS, runner=runner, until=1024, resume_from=tmp_path / "a")
    assert second.steps == 1024 and second.form_report.bins_visited >= first.form_report.bins_visited
    assert (tmp_path / "a" / "learner" / "form_state.npz").is_file()


def test_a_progress_that_leaves_its_range_only_in_training_ends_the_training_with_the_reason(car, tmp_path, jail):
    late = _with_body("compute_progress", "return {'speed': np.clip(np.abs(next_state.obs.velocity) * 200.0, 0, 2)}")
    with pytest.raises(WorkerError, match=r"outside \[0, 1\]"):
        train(car, TINY, tmp_path, late, runner=Runner.connect(jail=jail))


# --- a design run that mixes forms, through the loopback chat server -------------------------------------


def test_a_run_asked_for_three_forms_designs_trains_and_scores_each_and_reports_them_side_by_side(workspace):
    from .chat_server import ChatServer, text_of
    from .conftest import candidates_of, run_cli_to_end, the_run
    from .llm_persona import forms_persona

    flags = ["--rounds", "1", "--candidates", "3", "--repairs", "0", "--final-seeds", "1", "--workers", "2"]
    flags += ["--forms", "reward,progress,latent", "--no-videos"]
    with ChatServer(responder=forms_persona) as server:
        run_cli_to_end(["run", "cheetah_back_short", "--tasks-dir", "tasks", *flags], server.url, workspace)
    run = the_run(workspace)
    candidates = candidates_of(run)
    assert {c.id: c.form for c in candidates.values()} == {"r1c0": "reward", "r1c1": "progress", "r1c2": "latent"}
    for candidate in candidates.values():
        assert candidate.status == "trained", candidate.message
        assert candidate.training.form == candidate.form and candidate.fitness is not None
    assert candidates["r1c0"].training.form_report is None
    assert candidates["r1c1"].training.form_report.bins_visited > 0
    assert candidates["r1c2"].training.form_report.episodes_fitted > 0
    # Each designer was asked for its own form, and shown its own function.
    systems = [text_of(r["messages"][0]["content"]) for r in server.requests if r["messages"][0]["role"] == "system"]
    assert any("def compute_progress(state: State" in s for s in systems)
    assert any("def compute_latent(state: State" in s for s in systems)
    report = (run / "export" / "reward_report.md").read_text()
    assert "## By reward form" in report and "| progress (progress with count bonus) | 1 | 1 |" in report
    assert "| r1c1 | progress |" in report or "| r1c1 (best of round) | progress |" in report
    assert "latent: fitted weights moved_back" in report
    page = (run / "report.html").read_text()
    assert '<h3 id="forms">By reward form</h3>' in page and "latent: fitted weights moved_back" in page
    # The export of the best names its form and carries what its final training learned (export_run).
    exported = (run / "export" / "reward.py").read_text()
    if "def compute_progress(" in exported:
        assert "Form: progress" in exported and "What the scored training on seed 0 learned: it visited" in exported
    elif "def compute_latent(" in exported:
        assert "Form: latent" in exported and "FITTED_WEIGHTS = {" in exported
    else:
        assert "Form: reward" in exported
