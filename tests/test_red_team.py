"""The red team: what a reward program that got out of the restricted Python could do, and what still holds.

Each attack runs, in the place of the training worker, a job of tests/jobs/attacks.py
that trains as the real job does and then does its mischief with `os` and `open`
in hand. Everything after it is autoreward's own: the evaluation worker (no
candidate code), the reader of worker files, the supervisor's checks of messages,
halving's copies, the export. Each test asserts what an attacker wants never
happens: the trusted task score moves (it equals the score of the same policy
trained by the same reward without the attack), the orchestrator's API key
(a canary set in this process) appears in the run folder or in what a person
is shown, or more than that candidate's training ends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from autoreward.config import TrainingConfig
from autoreward.errors import ExportError, WorkerError
from autoreward.loop.runner import Runner
from autoreward.loop.training import finished_training, train
from autoreward.records import TrainingResult
from autoreward.sandbox.supervisor import run_worker
from autoreward.serialize import to_dict

from .conftest import REPO
from .jobs.attacks import MARKER

JOBS = REPO / "tests" / "jobs"  # the attack jobs, shown to a jail that the run made itself
CANARY = "sk-red-team-canary-" + "5ec7e7" * 6
TINY = TrainingConfig(steps=256, n_envs=1, eval_episodes=2, curve_points=2, video=False)
# A reward that asks for nothing: what the trusted score of an attack's policy is compared with.
DO_NOTHING = (
    "import numpy as np\n"
    "def compute_reward(state, action, next_state):\n"
    "    zero = np.zeros(state.batch_size)\n"
    "    return zero, {'nothing': zero}\n"
)


class Attacking:
    """An executor that runs `attack` (a job of tests/jobs/attacks.py) where the training job would run."""

    def __init__(self, attack: str):
        self.attack = attack
        self.kinds: list[str] = []

    def run(self, kind, payload, output_dir, limits, on_progress, jail):
        self.kinds.append(kind)
        if kind == "train":
            kind = f"tests.jobs.attacks:{self.attack}"
        return run_worker(kind, payload, output_dir, limits, on_progress, jail)

    def capacity(self):
        return None

    def stop(self, timeout: float = 5.0) -> None:
        pass


@pytest.fixture
def canary(monkeypatch):
    """The orchestrator's API key, as a user's shell would hold it."""
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    return CANARY


@pytest.fixture(scope="module")
def honest_score(hopper, tmp_path_factory, jail):
    """The held-out score of the do-nothing reward's policy, trained without any attack."""
    return train(
        hopper, TINY, tmp_path_factory.mktemp("honest"), DO_NOTHING, runner=Runner.connect(jail=jail)
    ).evaluation


def _leaks(folder: Path, *texts: str) -> list[str]:
    """Where the canary is: files under `folder` (read without following links), and the texts given."""
    found = [f"text {n}" for n, text in enumerate(texts) if CANARY in text]
    for where, _, names in os.walk(folder):  # never into a link a worker left
        for name in names:
            path = Path(where) / name
            if path.is_symlink() or not path.is_file():
                continue
            if CANARY.encode() in path.read_bytes():
                found.append(str(path.relative_to(folder)))
    return found


@pytest.mark.parametrize("attack", ["patch_state_classes", "forged_record", "environment_everywhere"])
def test_an_attack_inside_the_training_worker_leaves_the_trusted_score_unmoved(
    attack, hopper, tmp_path, jail, canary, honest_score
):
    executor = Attacking(attack)
    result = train(hopper, TINY, tmp_path, DO_NOTHING, runner=Runner.connect(executor, jail=jail))
    assert executor.kinds == ["train", "evaluate", "returns"]  # the score came from a worker of its own
    if attack == "patch_state_classes":  # the patch took, in the training worker: its own curve says 1e9
        assert any(p.fitness == 1e9 for p in result.curve)
    assert [e.fitness for e in result.evaluation.episodes] == [e.fitness for e in honest_score.episodes]
    assert result.evaluation.fitness_mean == honest_score.fitness_mean
    # The orchestrator's record is its own: a training.json the worker left in its folder is not read.
    assert finished_training(tmp_path) == result
    assert _leaks(tmp_path) == []


def test_a_forged_curve_moves_only_the_curve(hopper, tmp_path, jail, honest_score):
    result = train(hopper, TINY, tmp_path, DO_NOTHING, runner=Runner.connect(Attacking("forged_record"), jail=jail))
    assert {p.fitness for p in result.curve} == {1e9}  # the training worker's word, labelled as its own
    assert result.evaluation.fitness_mean == honest_score.fitness_mean


@pytest.mark.parametrize(
    ("attack", "said"),
    [
        ("link_policy_weights", "goes through a link"),
        ("fifo_policy", "not a regular file"),
        ("pickle_in_policy", "Object arrays cannot be loaded"),
        ("forged_result", "steps: expected a whole number"),
    ],
)
def test_a_policy_or_result_that_is_not_one_ends_that_training_in_a_sentence(
    attack, said, hopper, tmp_path, jail, canary, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkerError, match=said) as raised:
        train(hopper, TINY, tmp_path / "run", DO_NOTHING, runner=Runner.connect(Attacking(attack), jail=jail))
    assert not (tmp_path / "run" / "training.json").exists()
    assert not list(tmp_path.rglob(MARKER)), "a pickle in the weights ran"
    assert _leaks(tmp_path, str(raised.value)) == []
    # The next training, in the same process and folder, is not affected.
    assert (
        train(hopper, TINY, tmp_path / "run", DO_NOTHING, runner=Runner.connect(jail=jail)).evaluation.fitness_mean
        is not None
    )


def test_a_log_replaced_by_a_link_is_named_not_read(hopper, tmp_path, jail, canary):
    with pytest.raises(WorkerError) as raised:
        train(hopper, TINY, tmp_path, DO_NOTHING, runner=Runner.connect(Attacking("link_log_and_fail"), jail=jail))
    assert "goes through a link" in str(raised.value) or "not read" in str(raised.value)
    assert _leaks(tmp_path, str(raised.value)) == []


@pytest.mark.parametrize("attack", ["link_checkpoint", "folder_link_to_root"])
def test_a_slice_that_leaves_a_link_cannot_make_the_next_slice_copy_a_secret(attack, hopper, tmp_path, jail, canary):
    first = tmp_path / "training_128"
    train(hopper, TINY, first, DO_NOTHING, runner=Runner.connect(Attacking(attack), jail=jail), until=128)
    if attack == "link_checkpoint":
        with pytest.raises(WorkerError, match="goes through a link"):
            train(hopper, TINY, tmp_path / "training", DO_NOTHING, runner=Runner.connect(jail=jail), resume_from=first)
    else:  # the link is inside the worker's own folder, where no copy reads: the next slice continues
        train(hopper, TINY, tmp_path / "training", DO_NOTHING, runner=Runner.connect(jail=jail), resume_from=first)
    assert _leaks(tmp_path) == []


def test_a_forged_progress_message_ends_that_worker_and_never_reaches_the_display(hopper, tmp_path, jail):
    from autoreward.cli.options import _progress_bars

    seen = []
    with _progress_bars() as display:

        def show(data):
            seen.append(data)
            display("r1c0", data)

        with pytest.raises(WorkerError, match="'fitness' is text, not a number or a whole number or null"):
            train(
                hopper,
                TINY,
                tmp_path,
                DO_NOTHING,
                show,
                runner=Runner.connect(Attacking("forged_progress"), jail=jail),
            )
    assert all(not isinstance(d.get("fitness"), str) for d in seen)


def test_a_progress_handler_that_raises_does_not_end_the_worker(hopper, tmp_path, jail):
    def broken(data):
        raise TypeError("a display that cannot show this message")

    assert (
        train(hopper, TINY, tmp_path, DO_NOTHING, broken, runner=Runner.connect(jail=jail)).evaluation.fitness_mean
        is not None
    )


def test_the_export_loads_no_pickle(hopper, tmp_path, jail):
    from autoreward.review.export import _policy_arrays

    train(hopper, TINY, tmp_path, DO_NOTHING, runner=Runner.connect(jail=jail))
    arrays = _policy_arrays(tmp_path)
    assert set(arrays) == {"policy.npz", "normalizer.npz"}
    weights = dict(np.load(tmp_path / "evaluation" / "policy.npz"))
    weights[sorted(weights)[0]] = np.array([object()], dtype=object)
    np.savez(tmp_path / "evaluation" / "policy.npz", **weights)
    with pytest.raises(ExportError, match="cannot be exported"):
        _policy_arrays(tmp_path)
    (tmp_path / "evaluation" / "policy.npz").unlink()
    (tmp_path / "evaluation" / "policy.npz").symlink_to("/proc/self/environ")
    with pytest.raises(ExportError, match="goes through a link"):
        _policy_arrays(tmp_path)


def test_a_record_from_a_worker_is_checked_field_by_field():
    from autoreward.errors import WorkerFileError
    from autoreward.records import LearnerResult
    from autoreward.sandbox.worker_files import checked_result

    good = {"steps": 10, "curve": [], "wall_seconds": 1.5}
    assert checked_result(good, LearnerResult, "it").steps == 10
    for bad, said in [
        ({**good, "steps": True}, "steps: expected a whole number"),
        ({**good, "wall_seconds": float("nan")}, "wall_seconds: expected a finite number"),
        ({**good, "curve": "x"}, "curve: expected a list"),
        ({**good, "extra": 1}, "has no field 'extra'"),
        ({"steps": 1}, "lacks 'curve'"),
        ([1, 2], "expected a LearnerResult record"),
    ]:
        with pytest.raises(WorkerFileError, match=said):
            checked_result(bad, LearnerResult, "it")


def test_the_reader_refuses_links_anywhere_on_the_path_fifos_hard_links_and_large_files(tmp_path):
    from autoreward.errors import WorkerFileError
    from autoreward.sandbox import worker_files

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.json").write_text(json.dumps({"x": 1}))
    assert worker_files.read_bytes(tmp_path, "real/a.json", 100) == b'{"x": 1}'
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "environ").symlink_to("/proc/self/environ")
    os.link(tmp_path / "real" / "a.json", tmp_path / "real" / "hard.json")
    os.mkfifo(tmp_path / "real" / "fifo")
    for relative, said in [
        ("linked/a.json", "goes through a link"),
        ("real/environ", "goes through a link"),
        ("real/hard.json", "hard link"),
        ("real/fifo", "not a regular file"),
        ("../real/a.json", "not a path inside"),
    ]:
        with pytest.raises(WorkerFileError, match=said):
            worker_files.read_bytes(tmp_path, relative, 100)
    (tmp_path / "real" / "big").write_bytes(bytes(101))
    with pytest.raises(WorkerFileError, match="more than the 100 allowed"):
        worker_files.read_bytes(tmp_path, "real/big", 100)
    assert "goes through a link" in worker_files.read_tail(tmp_path / "real", "environ")
    # clear_folder removes a link where a folder should be, and never what it points to.
    (tmp_path / "evaluation").symlink_to(tmp_path / "real")
    worker_files.clear_folder(tmp_path / "evaluation")
    assert (tmp_path / "evaluation").is_dir() and not (tmp_path / "evaluation").is_symlink()
    assert (tmp_path / "real" / "a.json").exists()


def test_the_supervisor_writes_its_files_without_following_a_link_a_worker_left(tmp_path, jail):
    target = tmp_path / "victim.txt"
    target.write_text("untouched")
    folder = tmp_path / "worker"
    folder.mkdir()
    (folder / "job.json").symlink_to(target)
    (folder / "worker.log").symlink_to(target)
    outcome = run_worker("tests.jobs.probe:run_probe_job", {"code": "result = 1"}, folder, jail=jail)
    assert outcome.status == "ok" and outcome.result == 1
    assert target.read_text() == "untouched"
    assert not (folder / "job.json").is_symlink() and not (folder / "worker.log").is_symlink()


def test_a_training_record_written_by_old_versions_still_reads(tmp_path):
    from autoreward.records import Evaluation

    record = TrainingResult("t", "program", "ppo", 1, 0, 1, (), Evaluation((), None, None, 1.0, None), 1.0, 1.0)
    (tmp_path / "training.json").write_text(json.dumps(to_dict(record)))
    assert finished_training(tmp_path) == record


class AttackingSome(Attacking):
    """Attacks only the trainings whose folder is under one of `targets` (candidate ids), with their own attack."""

    def __init__(self, attacks: dict[str, str]):
        super().__init__("")
        self.attacks = attacks

    def run(self, kind, payload, output_dir, limits, on_progress, jail):
        self.kinds.append(kind)
        chosen = next((a for c, a in self.attacks.items() if c in Path(output_dir).parts), None)
        if kind == "train" and chosen is not None:
            kind = f"tests.jobs.attacks:{chosen}"
        return run_worker(kind, payload, output_dir, limits, on_progress, jail.showing([JOBS]))


@pytest.mark.slow
def test_in_a_design_run_an_attack_ends_at_most_its_own_candidate_and_leaks_nothing(tmp_path, canary, jail):
    import autoreward
    from autoreward.config import LLMSettings, LoopConfig
    from autoreward.task.files import find_task

    from .chat_server import ChatServer
    from .conftest import SHORT_TASK
    from .llm_persona import persona

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cheetah_back_short.toml").write_text(SHORT_TASK)
    task = find_task("cheetah_back_short", (tmp_path / "tasks",))
    loop = LoopConfig(rounds=2, candidates=2, repair_attempts=1, final_seeds=1, budget=task.budget)
    executor = AttackingSome({"r1c0": "forged_result", "r1c1": "environment_everywhere"})
    with ChatServer(responder=persona) as server:
        settings = LLMSettings(model="m", base_url=server.url)
        store = autoreward.design(
            task, llm=settings, loop=loop, runs_dir=tmp_path / "runs", runner=autoreward.Runner.connect(executor)
        ).store
    candidates = {c.id: c for c in store.candidates()}
    assert candidates["r1c0"].status == "training_failed"
    assert "steps: expected a whole number" in candidates["r1c0"].message
    assert candidates["r1c1"].status == "trained" and candidates["r2c0"].status == "trained"
    assert store.load_final() is not None
    assert _leaks(store.path) == []


def test_a_forged_check_result_is_refused_as_the_programs_fault(hopper, tmp_path, jail, monkeypatch):
    """A check worker that sends a result no check sends (a category that does not exist, a line as text)
    gets the program refused in one sentence, not a crash of the orchestrator."""
    from autoreward.contract import checker
    from autoreward.records import CheckCategory

    forged = "result = {'category': 'ok-and-then-some', 'message': 'fine', 'line': 'one'}"

    def the_worker_says(kind, payload, output_dir, limits, jail=None, **rest):
        return run_worker("tests.jobs.probe:run_probe_job", {"code": forged}, output_dir, limits, jail=jail, **rest)

    monkeypatch.setattr(checker, "run_worker", the_worker_says)
    result = checker.check_program(hopper, DO_NOTHING, tmp_path, jail=jail)
    assert result.category is CheckCategory.FORBIDDEN
    assert "sent what the check does not send" in result.message and "category" in result.message
