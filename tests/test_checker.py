"""The checker: every way a reward program can fail gets its own category and an actionable message."""

import pytest

from autoreward.contract.checker import check_program
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


def test_exceptions_point_at_the_program_line(cheetah, quick_check, tmp_path):
    code = body("a = next_state.qvel[:, 0]\nb = a.reshape(3, -1, 7)\nreturn b, {'b': b}")
    result = check_program(cheetah, code, tmp_path, quick_check)
    assert result.category is CheckCategory.EXCEPTION
    assert result.line == 6 and "a.reshape(3, -1, 7)" in result.message


def test_every_shipped_task_passes_the_checker_with_its_human_reward(tmp_path, quick_check):
    for task in load_tasks().values():
        result = check_program(task, human_reward(task), tmp_path / task.id, quick_check)
        assert result.ok, f"{task.id}: {result.message}"
