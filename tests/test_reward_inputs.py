"""A score no candidate can touch, and a reward that breaks late: the reward program's inputs are read-only,
and the passive check ends a training at the first broken batch with one sentence for the designer.

The in-place edits are those an LLM writes without meaning harm (`h = next_state.bodies.torso.pos[:, 2];
h -= 1.25`) and those a hostile program would try (setting the writeable flag back, replacing a field).
Each is refused with the category `writes_input`, or leaves the task score exactly as an untouched
program's.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from autoreward.config import CheckOptions, TrainingConfig
from autoreward.contract.checker import check_loaded, check_program, collect_transitions
from autoreward.contract.passive import PassiveChecker
from autoreward.contract.reward_program import load
from autoreward.errors import RewardFailure
from autoreward.loop.runner import Runner
from autoreward.loop.training import train
from autoreward.records import Candidate, CheckCategory
from autoreward.serialize import read_json
from autoreward.sim.state import StateLayout
from autoreward.task.files import find_task, make_env

from .chat_server import ChatServer, Reply
from .conftest import RUN_FLAGS, SHORT_TASK, run_autoreward, run_cli_to_end
from .llm_persona import block, persona


def program(body: str) -> str:
    """A reward whose only term, the effort, learns nothing; `body` runs first (lines from 4 on)."""
    return (
        "import numpy as np\n\ndef compute_reward(state, action, next_state):\n"
        + textwrap.indent(body, "    ")
        + "\n    effort = -np.sum(np.square(action), axis=1)\n    return effort, {'effort': effort}\n"
    )


# The program: trained, it scored 19.98 m/s and a 100% success rate by moving nothing.
FAKES_THE_SCORE = program("x = next_state.joints.rootx.qpos\nx += 1.0  # looks like a relative-position term")

# (what the body does, the field the message must name, the line the message must name)
WRITES = [
    ("x = next_state.joints.rootx.qpos\nx += 1.0", "next_state.joints.rootx.qpos", 5),
    ("h = next_state.bodies.torso.pos[:, 2]\nh -= 1.25", "next_state.bodies.torso.pos", 5),
    ("state.qpos[:, 0] = 0.0", "state.qpos", 4),
    ("np.add(next_state.qvel, 1.0, out=next_state.qvel)", "next_state.qvel", 4),
    ("np.copyto(next_state.bodies.torso.pos, 0.0)", "next_state.bodies.torso.pos", 4),
    ("next_state.qpos.fill(0.0)", "next_state.qpos", 4),
    ("action *= 0.0", "action", 4),
    ("action[:, 0] = 1.0", "action", 4),
    ("x = next_state.qpos\nx.setflags(write=True)\nx += 1.0", "next_state.qpos", 5),
    ("next_state.joints.rootx.qpos = next_state.joints.rootx.qpos + 1.0", "next_state.joints.rootx.qpos", 4),
    ("del next_state.joints.rootx.qpos", "next_state.joints.rootx.qpos", 4),
]


@pytest.fixture(scope="module")
def cheetah_back():
    return find_task("half_cheetah_backward")


@pytest.fixture(scope="module")
def transitions(cheetah_back):
    return collect_transitions(cheetah_back, 64, seed=0)


@pytest.mark.parametrize("body, field, line", WRITES, ids=[w[0].splitlines()[-1] for w in WRITES])
def test_a_program_that_writes_into_its_inputs_is_refused_naming_the_field(transitions, body, field, line):
    states, actions, next_states = transitions
    before = {name: array.copy() for name, array in next_states.arrays().items()}
    result = check_loaded(program(body), states, actions, next_states, CheckOptions(batch_size=32))
    assert result.category is CheckCategory.WRITES_INPUT, result.message
    assert f"line {line}: the program writes to `{field}`" in result.message
    assert "Compute into a new array instead" in result.message
    assert all(np.array_equal(before[name], array, equal_nan=True) for name, array in next_states.arrays().items())


def test_the_writable_buffer_cannot_be_reached_through_base(transitions):
    states, actions, next_states = transitions
    qpos = next_states.qpos.copy()
    for body in ("b = next_state.qpos.base\nb[0] = 1.0", "b = np.asarray(next_state.qpos.base)\nb += 1.0"):
        result = check_loaded(program(body), states, actions, next_states, CheckOptions(batch_size=32))
        assert not result.ok, body
    assert np.array_equal(next_states.qpos, qpos)


def test_the_checker_worker_refuses_the_program_that_faked_the_score(cheetah_back, tmp_path, jail, quick_check):
    result = check_program(cheetah_back, FAKES_THE_SCORE, tmp_path, quick_check, jail)
    assert result.category is CheckCategory.WRITES_INPUT
    assert result.message.startswith("line 5: the program writes to `next_state.joints.rootx.qpos`;")


TINY = TrainingConfig(steps=1024, n_envs=2, eval_episodes=2, curve_points=2, video=False)


def test_trained_as_it_is_the_program_cannot_fake_the_score(cheetah_back, tmp_path, jail):
    with pytest.raises(RewardFailure, match="writes to `next_state.joints.rootx.qpos`") as failure:
        train(cheetah_back, TINY, tmp_path, FAKES_THE_SCORE, runner=Runner.connect(jail=jail))
    assert failure.value.category == "writes_input" and "Traceback" not in str(failure.value)


def test_a_program_that_swallows_the_refusal_scores_exactly_as_an_untouched_one(cheetah_back, tmp_path, jail):
    swallows = program("x = next_state.joints.rootx.qpos\ntry:\n    x += 1.0\nexcept ValueError:\n    pass")
    tried = train(cheetah_back, TINY, tmp_path / "tried", swallows, runner=Runner.connect(jail=jail))
    untouched = train(cheetah_back, TINY, tmp_path / "untouched", program("pass"), runner=Runner.connect(jail=jail))
    assert tried.evaluation.fitness_mean == untouched.evaluation.fitness_mean
    assert [e.fitness for e in tried.evaluation.episodes] == [e.fitness for e in untouched.evaluation.episodes]
    assert tried.evaluation.success_rate == untouched.evaluation.success_rate == 0.0


# --- the passive check ----------------------------------------------------------------------------

# NaN only after 30 s of simulated time: the check's states (256 steps from a reset, 12.8 s) never get there.
LATE_NAN = (
    "import numpy as np\n\ndef compute_reward(state, action, next_state):\n"
    "    speed = -next_state.joints.rootx.qvel\n"
    "    late = np.where(next_state.time > 30.0, np.nan, 0.0)\n"
    "    return speed + late, {'speed': speed, 'late': late}\n"
)


def test_the_passive_check_names_the_component_the_environment_the_step_and_the_time(cheetah_back, transitions):
    layout = StateLayout.from_env(make_env(cheetah_back), extras=cheetah_back.extras)
    states, actions, next_states = transitions
    rows = np.arange(8)
    checker = PassiveChecker(load(LATE_NAN), LATE_NAN)
    total, components = checker(states.rows(rows), actions[rows], next_states.rows(rows))  # all before 30 s
    assert set(components) == {"speed", "late"} and np.isfinite(total).all()
    late = {name: array.copy() for name, array in next_states.rows(rows).arrays().items()}
    late["time"][3] = 30.5
    with pytest.raises(RewardFailure) as failure:
        checker(states.rows(rows), actions[rows], layout.state(late))
    assert failure.value.category == "non_finite"
    assert str(failure.value) == (
        "the reward broke at training step 16, simulated time 30.50 s (non_finite): component 'late' is NaN in "
        "environment 3; every value must be finite at every step: guard divisions, logs, square roots and "
        "exponentials (np.maximum, np.clip) against the states that reach them."
    )


def test_a_wrong_shape_late_in_training_is_its_own_category(transitions):
    states, actions, next_states = transitions
    code = (
        "import numpy as np\n\ndef compute_reward(state, action, next_state):\n"
        "    v = next_state.qvel[:, 0]\n    return v, {'v': v, 'pair': next_state.qvel[:, :2]}\n"
    )
    with pytest.raises(RewardFailure, match=r"component 'pair' has shape \(8, 2\) instead of \(8,\)") as failure:
        PassiveChecker(load(code), code)(states.rows(np.arange(8)), actions[:8], next_states.rows(np.arange(8)))
    assert failure.value.category == "wrong_shape"


def test_a_reward_that_turns_nan_after_30_s_passes_the_check_then_stops_its_training_in_one_sentence(
    cheetah_back, tmp_path
):
    (tmp_path / "late_nan.py").write_text(LATE_NAN)
    result = run_autoreward(
        *["train", "half_cheetah_backward", "--reward", "late_nan.py", "--steps", "4096", "--envs", "2"],
        *["--eval-episodes", "1", "--no-videos"],
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "check: ok" in " ".join(result.stdout.split()).lower() or "passed" in result.stdout
    error = " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and "tensor" not in result.stderr
    assert "(non_finite): component 'late' is NaN in environment" in error
    assert "simulated time 30.0" in error and "guard divisions" in error


LONG_TASK = SHORT_TASK.replace('id = "cheetah_back_short"', 'id = "cheetah_back_long"').replace(
    "max_episode_steps = 40\n", ""
)  # 1000-step episodes (50 s): training reaches 30 s of simulated time, the check's 256 states do not
LONG_TASK = LONG_TASK.replace("steps = 512", "steps = 3072").replace("eval_episodes = 2", "eval_episodes = 1")


def _late_nan_designer(body: dict) -> Reply:
    """As `persona`, but round 1's second candidate turns NaN after 30 s of simulated time."""
    messages = body["messages"]
    first_round = len(messages) == 2 and "The best reward so far" not in messages[1]["content"]
    if first_round and body.get("seed") == 1:
        return block("\n" + LATE_NAN, "Reward the backward speed.")
    return persona(body)


@pytest.mark.slow  # a two-round run of 3 072-step trainings: about a minute and a half
def test_in_a_design_run_the_next_prompt_carries_the_late_nan_sentence(workspace):
    (workspace / "tasks" / "cheetah_back_long.toml").write_text(LONG_TASK)
    flags = ["run", "cheetah_back_long", "--tasks-dir", "tasks", *RUN_FLAGS, "--final-seeds", "1", "--no-videos"]
    with ChatServer(responder=_late_nan_designer) as server:
        run_cli_to_end(flags, server.url, workspace)
    run = next((workspace / "runs").glob("cheetah_back_long__design*"))
    late = read_json(run / "round_1" / "r1c1" / "candidate.json", Candidate)
    assert late.status == "training_failed" and late.attempts[-1].check.ok  # it passed its check
    assert "(non_finite): component 'late' is NaN in environment" in late.message
    assert "simulated time 30.0" in late.message and "Traceback" not in late.message
    round_two = [
        r["messages"][1]["content"]
        for r in server.requests
        if len(r["messages"]) == 2 and "The best reward so far" in r["messages"][1]["content"]
    ]
    assert round_two and all("r1c1: training failed: the reward broke at training step" in p for p in round_two)
    assert all("component 'late' is NaN" in p for p in round_two)
