"""What a reward program can reach: no public path from its names leads outside array math.

The static rules refuse underscore attributes and a list of others; the
loader gives the program a few builtins and a numpy cut down to an
allowlist. This walks every attribute a program could still name, a few
levels deep, from everything it holds (its globals, the State, arrays,
numpy scalars and generators, its own functions, generator expressions and
exceptions) and fails on anything that could read or write a file, import,
or reach a frame, code object or module other than math and numpy's, a
class of autoreward's (a descriptor set on one changes every State), or a
writable array over the State's buffers.
"""

import re
import types

import numpy as np
import pytest

from autoreward.contract import reward_program
from autoreward.contract.checker import collect_transitions
from autoreward.contract.restricted_numpy import restricted_numpy
from autoreward.task.files import find_task

DEPTH = 4
SAFE_MODULES = ("numpy", "math")
SUSPECT_SOURCES = ("npyio", "datasource", "memmap", "format", "ctypeslib", "testing", "utils", "_methods", "records")


def _reachable_problems(roots: dict, refused=reward_program.FORBIDDEN_ATTRIBUTES, buffers=()):
    """What a program could reach from `roots` through public attributes; `buffers` are arrays it may read only."""
    problems, seen = {}, set()
    frontier = list(roots.items())
    for depth in range(DEPTH + 1):
        following = []
        for path, value in frontier:
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, types.ModuleType):
                if value.__name__.split(".")[0] not in SAFE_MODULES:
                    problems[path] = f"module {value.__name__}"
                    continue
            if isinstance(value, (types.FrameType, types.CodeType, types.TracebackType)):
                problems[path] = type(value).__name__
                continue
            if isinstance(value, type) and value.__module__.startswith("autoreward"):
                problems[path] = f"class {value.__module__}.{value.__name__}"
            if isinstance(value, (np.ndarray, memoryview)) and not (
                value.readonly if isinstance(value, memoryview) else not value.flags.writeable
            ):
                if any(np.shares_memory(value, buffer) for buffer in buffers):
                    problems[path] = "a writable array over the State's buffers"
            source = getattr(value, "__module__", None)
            if callable(value) and isinstance(source, str):
                if source == "builtins" and getattr(value, "__name__", "") not in reward_program.SAFE_BUILTINS:
                    if not isinstance(value, type) and not hasattr(type(value), "__get__"):
                        problems[path] = f"builtin {value.__name__}"
                if any(part in source for part in SUSPECT_SOURCES) and source.startswith("numpy"):
                    problems[path] = f"callable from {source}"
            if depth == DEPTH:
                continue
            try:
                names = dir(value)
            except Exception:
                continue
            for name in names:
                if name.startswith("_") or name in refused:
                    continue
                try:
                    child = getattr(value, name)
                except Exception:
                    continue
                if not isinstance(child, (int, float, complex, str, bytes, bool, type(None))):
                    following.append((f"{path}.{name}", child))
            if isinstance(value, dict):
                following += [(f"{path}[{k!r}]", v) for k, v in value.items() if not str(k).startswith("__")]
            if isinstance(value, (tuple, list)) and len(value) <= 16:
                following += [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        frontier = following
    return problems


@pytest.fixture(scope="module")
def program_roots(cheetah):
    code = (
        "import numpy as np\nimport numpy.linalg as la\nimport math\n\n"
        "def compute_reward(state, action, next_state):\n"
        "    v = next_state.qvel[:, 0]\n"
        "    return v, {'v': v}\n"
    )
    function = reward_program.load(code)
    states, actions, _ = collect_transitions(cheetah, 4, 0)
    namespace = function.__globals__
    roots = {name: value for name, value in namespace.items() if not name.startswith("__")}
    roots.update({f"builtins.{k}": v for k, v in namespace["__builtins__"].items() if k != "__import__"})
    roots.update(
        state=states,
        action=actions,
        scalar=np.float64(1.0),
        rng=namespace["np"].random.default_rng(0),
        generator=(x for x in ()),
        exception=ValueError("x"),
        function=function,
        lambda_=lambda: 0,
        body=states.bodies.torso,
        joint=states.joints.bthigh,
    )
    return roots


def test_no_public_path_from_a_program_leads_outside_array_math(program_roots):
    problems = _reachable_problems(program_roots, buffers=_buffers(program_roots["state"]))
    assert problems == {}, "\n".join(f"{path}: {what}" for path, what in sorted(problems.items())[:30])


def _buffers(state) -> list[np.ndarray]:
    return list(state.arrays().values())


def test_no_public_path_from_an_observation_state_leads_to_a_class_or_its_buffers():
    states, actions, _ = collect_transitions(find_task("pendulum_swing_up"), 4, 0)
    roots = {"state": states, "obs": states.obs, "action": actions}
    problems = _reachable_problems(roots, buffers=_buffers(states))
    assert problems == {}, "\n".join(f"{path}: {what}" for path, what in sorted(problems.items())[:30])


def test_the_walk_sees_the_state_holes_it_guards_against(program_roots):
    """Without the refused names the walk finds the State's buffer behind `.base.obj`, and a class held in a
    public attribute (as `state.walkable` held Body): its silence above means something."""
    state = program_roots["state"]
    problems = _reachable_problems({"state": state}, refused=frozenset(), buffers=_buffers(state))
    assert problems.get("state.qpos.base.obj") == "a writable array over the State's buffers"
    held = _reachable_problems({"held": (type(state.bodies.torso),)})
    assert held == {"held[0]": "class autoreward.sim.state.Body"}


def test_the_walk_sees_the_holes_it_guards_against():
    """Real numpy, and only the underscore rule: the walk finds the escapes, so its silence above means something."""
    problems = _reachable_problems({"np": np, "generator": (x for x in ())}, refused=frozenset())
    found = set(problems.values())
    assert "module builtins" in found  # np.ma.core.builtins
    assert "frame" in found  # generator.gi_frame
    assert any("npyio" in what for what in found)  # np.load, np.save, ...


# Past the static rules (a name bound to another, a dtype built at run time), the restricted numpy refuses too.
RUNTIME_REFUSALS = [
    ("make = np.ndarray\n    make((1,), 'f8', np.zeros(1))", "np.ndarray(...) is not available"),
    ("np.zeros(3, dtype='o'.upper())", "np.zeros(..., dtype='O') is not available"),
    ("np.array([1.0], 'o'.upper())", "np.array(..., dtype='O') is not available"),
    ("np.arange(0, 3, 1, 'o'.upper())", "np.arange(..., dtype='O') is not available"),
    ("np.full(3, 0.0, [('f', 'o'.upper())])", "np.full(..., dtype=[('f', 'O')]) is not available"),
    ("kind = np.dtype('o'.upper())\n    np.empty_like(state.qpos, kind)", "np.empty_like(..., dtype=dtype('O'))"),
]


@pytest.mark.parametrize("line, message", RUNTIME_REFUSALS, ids=[r[0].split("\n")[-1] for r in RUNTIME_REFUSALS])
def test_the_restricted_numpy_refuses_raw_memory_and_object_dtypes_the_rules_cannot_see(program_roots, line, message):
    code = f"import numpy as np\n\ndef compute_reward(state, action, next_state):\n    {line}\n    return 0\n"
    assert reward_program.static_check(code).ok
    with pytest.raises(TypeError, match=re.escape(message)):
        reward_program.load(code)(program_roots["state"], program_roots["action"], program_roots["state"])


def test_np_ndarray_still_names_the_type_and_numeric_dtypes_still_work(program_roots):
    code = (
        "import numpy as np\n\n"
        "def helper(x: np.ndarray | float) -> np.ndarray:\n"
        "    return np.asarray(x, dtype=np.float64)\n\n"
        "def compute_reward(state, action, next_state):\n"
        "    v = helper(next_state.qpos[:, 0])\n"
        "    checks = (isinstance(v, np.ndarray), isinstance(1.0, np.ndarray), isinstance(2.0, (np.ndarray, float)))\n"
        "    counts = np.zeros(len(v), dtype=np.int64) + np.arange(len(v), dtype=int)\n"
        "    return v + counts, {'v': v, 'checks': checks}\n"
    )
    state = program_roots["state"]
    total, components = reward_program.load(code)(state, program_roots["action"], state)
    assert components["checks"] == (True, False, True)
    np.testing.assert_array_equal(total, state.qpos[:, 0] + np.arange(state.batch_size))
    assert not hasattr(restricted_numpy(), "object_")
