"""The checker: every way a reward program can fail gets its own category and an actionable message."""

import pytest

from autoreward.config import CheckOptions
from autoreward.contract.checker import check_loaded, check_program, collect_transitions
from autoreward.contract.reward_program import static_check
from autoreward.records import CheckCategory
from autoreward.task.files import load_tasks

from .conftest import human_reward

HEADER = "import numpy as np\n\n\ndef compute_reward(state, action, next_state):\n"


def body(lines: str) -> str:
    return HEADER + "".join(f"    {line}\n" for line in lines.strip().splitlines())


CASES = {
    "syntax": ("def compute_reward(state, action, next_state)\n    return 1\n", CheckCategory.SYNTAX, "line 1"),
    "signature": ("def compute_reward(state):\n    return 1\n", CheckCategory.SIGNATURE, "(state, action, next_state)"),
    "no function": ("import numpy as np\nx = 1\n", CheckCategory.SIGNATURE, "defines no top-level function"),
    "import os": ("import os\n" + body("return 0"), CheckCategory.FORBIDDEN, "`import os` is not allowed"),
    "dunder": (body("c = state.__class__\nreturn 0"), CheckCategory.FORBIDDEN, "underscore"),
    "open": (body("open('/etc/passwd')\nreturn 0"), CheckCategory.FORBIDDEN, "`open` is not allowed"),
    "exception": (
        body("v = next_state.bodies.nose.pos[:, 0]\nreturn v, {'v': v}"),
        CheckCategory.EXCEPTION,
        "there is no body named 'nose'; the bodies are: world, torso",
    ),
    "division by zero": (body("v = 1 / 0\nreturn v, {'v': v}"), CheckCategory.EXCEPTION, "ZeroDivisionError"),
    "nan": (
        body("v = np.log(next_state.qvel[:, 0] * 0.0 - 1.0)\nreturn v, {'v': v}"),
        CheckCategory.NON_FINITE,
        "NaN",
    ),
    "infinite": (
        body("v = next_state.qvel[:, 0] / 0.0 + 1.0\nreturn v, {'v': v}"),
        CheckCategory.NON_FINITE,
        "infinite",
    ),
    "huge": (body("v = next_state.qvel[:, 0] * 0.0 + 1e12\nreturn v, {'v': v}"), CheckCategory.OUT_OF_RANGE, "1e+12"),
    "wrong shape": (body("v = next_state.qpos\nreturn v, {'v': v[:, 0]}"), CheckCategory.WRONG_SHAPE, "expected (32,)"),
    "scalar component": (
        body("v = next_state.qpos[:, 0]\nreturn v, {'v': v, 'alive': 1.0}"),
        CheckCategory.WRONG_SHAPE,
        "np.full",
    ),
    "returns None": (body("return None"), CheckCategory.WRONG_OUTPUT, "returned NoneType"),
    "no components": (body("v = next_state.qpos[:, 0]\nreturn v, {}"), CheckCategory.WRONG_OUTPUT, "empty"),
    "object dtype": (
        body("v = np.array([None] * state.batch_size)\nreturn v, {'v': v}"),
        CheckCategory.WRONG_OUTPUT,
        "dtype object",
    ),
    "only at the training's batch size": (
        body("v = next_state.qvel[:, 0] + (1.0 if len(action) == 4 else 0.0)\nreturn v, {'v': v}"),
        CheckCategory.NOT_VECTORIZED,
        "in a batch of 4, the size training calls it with (4 environments)",
    ),
    "if on an array": (
        body("v = next_state.qvel[:, 0]\nif v > 0:\n    v = 2 * v\nreturn v, {'v': v}"),
        CheckCategory.NOT_VECTORIZED,
        "np.where",
    ),
    "batch statistics": (
        body("v = next_state.qvel[:, 0] - next_state.qvel[:, 0].mean()\nreturn v, {'v': v}"),
        CheckCategory.NOT_VECTORIZED,
        "depend only on its own row",
    ),
    "random": (
        body("v = np.random.rand(state.batch_size)\nreturn v, {'v': v}"),
        CheckCategory.NON_DETERMINISTIC,
        "random",
    ),
    "too slow": (
        body(
            "t = 0.0\nfor i in range(3000000):\n    t += 1e-9\nv = next_state.qpos[:, 0] * 0.0 + t\nreturn v, {'v': v}"
        ),
        CheckCategory.TOO_SLOW,
        "budget",
    ),
    "infinite loop": (body("while True:\n    pass"), CheckCategory.TIMEOUT, "did not return"),
    "memory bomb": (body("x = np.ones((2**40,))\nreturn x, {'x': x}"), CheckCategory.EXCEPTION, "MemoryError"),
    "deep recursion": (
        "def f(n):\n    return f(n + 1)\n\n" + body("return f(0)"),
        CheckCategory.EXCEPTION,
        "RecursionError",
    ),
    "fails at top level": ("import numpy as np\nX = 1 / 0\n" + body("return 0"), CheckCategory.EXCEPTION, "top level"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_failure_gets_its_category_and_a_message(name, cheetah, quick_check, tmp_path):
    code, category, fragment = CASES[name]
    result = check_program(cheetah, code, tmp_path, quick_check)
    assert result.category is category, result.message
    assert fragment in result.message


def test_a_good_program_passes_and_lists_its_components(cheetah, quick_check, tmp_path):
    result = check_program(cheetah, human_reward(cheetah), tmp_path, quick_check)
    assert result.ok, result.message
    assert result.components == ("forward", "ctrl")
    assert result.seconds_per_call is not None


def test_a_program_that_reads_named_fields_passes(cheetah, quick_check, tmp_path):
    code = body(
        "forward = (next_state.bodies.torso.pos[:, 0] - state.bodies.torso.pos[:, 0]) / state.dt\n"
        "upright = np.cos(next_state.joints.rooty.qpos)\n"
        "effort = -0.1 * np.sum(np.square(action), axis=1)\n"
        "return forward + upright + effort, {'forward': forward, 'upright': upright, 'effort': effort}"
    )
    result = check_program(cheetah, code, tmp_path, quick_check)
    assert result.ok, result.message
    assert result.components == ("forward", "upright", "effort")


@pytest.fixture(scope="module")
def cheetah_transitions(cheetah):
    return collect_transitions(cheetah, 32, seed=0)


def test_the_check_calls_the_program_at_the_training_batch_size_it_is_given(cheetah_transitions):
    eight = body("v = next_state.qvel[:, 0] * (2.0 if len(action) == 8 else 1.0)\nreturn v, {'v': v}")
    at_eight = check_loaded(eight, *cheetah_transitions, CheckOptions(batch_size=16, training_batch_size=8))
    assert at_eight.category is CheckCategory.NOT_VECTORIZED, at_eight.message
    assert "in a batch of 8, the size training calls it with (8 environments)" in at_eight.message
    at_four = check_loaded(eight, *cheetah_transitions, CheckOptions(batch_size=16, training_batch_size=4))
    assert at_four.ok, at_four.message  # a size training does not use is not called


def test_a_failure_only_at_the_training_batch_size_says_so(cheetah_transitions):
    code = body("scale = 1 / (len(action) != 4)\nv = next_state.qvel[:, 0] * scale\nreturn v, {'v': v}")
    result = check_loaded(code, *cheetah_transitions, CheckOptions(batch_size=16, training_batch_size=4))
    assert result.category is CheckCategory.EXCEPTION, result.message
    assert result.message.startswith("compute_reward on a batch of 4 (the training's batch) raised ZeroDivisionError")


# (what the program does, its category, a fragment of the message): the refusals of issue 24.
REFUSED = {
    "object dtype 'O'": ("z = np.zeros(3, dtype='O')", CheckCategory.FORBIDDEN, "the string 'O' names an object dtype"),
    "object dtype '|O'": ("z = np.zeros(3, '|O')", CheckCategory.FORBIDDEN, "names an object dtype"),
    "object dtype 'object'": ("z = np.array([1.0], 'object')", CheckCategory.FORBIDDEN, "names an object dtype"),
    "object dtype 'f8, O'": ("z = np.zeros(3, 'f8, O')", CheckCategory.FORBIDDEN, "names an object dtype"),
    "object dtype b'O'": ("z = np.zeros(3, dtype=b'O')", CheckCategory.FORBIDDEN, "names an object dtype"),
    "object dtype in a dict": (
        "z = np.zeros(3, {'names': ['a'], 'formats': ['O8']})",
        CheckCategory.FORBIDDEN,
        "names an object dtype",
    ),
    "object": ("z = np.zeros(3, dtype=object)", CheckCategory.FORBIDDEN, "use a float dtype"),
    "np.object_": ("z = np.zeros(3, dtype=np.object_)", CheckCategory.FORBIDDEN, "`.object_` is not allowed"),
    "np.ndarray(...)": ("z = np.ndarray((3,))", CheckCategory.FORBIDDEN, "make arrays with np.zeros"),
    "ndarray imported": (
        "from numpy import ndarray as make\nz = make((3,))",
        CheckCategory.FORBIDDEN,
        "`make(...)` makes an array over raw memory",
    ),
    "frombuffer": ("z = np.frombuffer(state.qpos)", CheckCategory.FORBIDDEN, "`.frombuffer` is not allowed"),
    ".base": ("z = state.qpos.base", CheckCategory.FORBIDDEN, "use np.copy(x) where you need an array you can change"),
    ".obj": ("z = state.qpos.data.obj", CheckCategory.FORBIDDEN, "`.data` is not allowed"),
    ".view": ("z = state.qpos.view(np.int64)", CheckCategory.FORBIDDEN, "x.astype(float)"),
    ".getfield": ("z = state.qpos.getfield(np.int8, 7)", CheckCategory.FORBIDDEN, "`.getfield` is not allowed"),
    "setting an input's field": (
        "state.bodies.torso.pos = state.bodies.torso.com",
        CheckCategory.WRITES_INPUT,
        "line 6: the program writes to `state.bodies.torso.pos`",
    ),
    "setting a module's attribute": ("math.pi = 3.0", CheckCategory.FORBIDDEN, "`math.pi` sets an attribute"),
    "setting through a local": ("c = state.bodies\nc.torso = c.bfoot", CheckCategory.FORBIDDEN, "`c.torso` sets"),
    "deleting an attribute": ("del np.linalg.norm", CheckCategory.FORBIDDEN, "`np.linalg.norm` deletes an attribute"),
    "augmented": ("compute_reward.calls += 1", CheckCategory.FORBIDDEN, "`compute_reward.calls` sets an attribute"),
    "as a loop target": ("for math.e in range(3):\n    pass", CheckCategory.FORBIDDEN, "`math.e` sets"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_the_static_rules_refuse_raw_memory_object_dtypes_and_attribute_assignment(name):
    code, category, fragment = REFUSED[name]
    result = static_check("import math\n" + body(code + "\nreturn 0"))
    assert result.category is category, result.message
    assert fragment in result.message, result.message
    assert result.line is not None and result.message.startswith(f"line {result.line}: ")


@pytest.mark.parametrize(
    "code",
    [
        "ok = isinstance(next_state.qpos, np.ndarray)",
        "v = next_state.qpos[:, 0].astype(np.float32)\nz = np.zeros(3, dtype=float)",
        "terms = {'object': next_state.qpos[:, 0], 'O': next_state.qpos[:, 1]}  # component names, not dtypes",
        '"""Reward the object for moving towards the goal."""',
    ],
)
def test_what_looks_like_them_but_is_not_passes_the_static_rules(code):
    result = static_check(body(code + "\nreturn 0"))
    assert result.ok, result.message


def test_exceptions_point_at_the_program_line(cheetah, quick_check, tmp_path):
    code = body("a = next_state.qvel[:, 0]\nb = a.reshape(3, -1, 7)\nreturn b, {'b': b}")
    result = check_program(cheetah, code, tmp_path, quick_check)
    assert result.category is CheckCategory.EXCEPTION
    assert result.line == 6 and "a.reshape(3, -1, 7)" in result.message


def test_every_shipped_task_passes_the_checker_with_its_human_reward(tmp_path, quick_check):
    for task in load_tasks().values():
        result = check_program(task, human_reward(task), tmp_path / task.id, quick_check)
        assert result.ok, f"{task.id}: {result.message}"
