"""What a reward program can reach: no public path from its names leads outside array math.

The static rules refuse underscore attributes and a list of others; the
loader gives the program a few builtins and a numpy cut down to an
allowlist. This walks every attribute a program could still name, a few
levels deep, from everything it holds (its globals, the State, arrays,
numpy scalars and generators, its own functions, generator expressions and
exceptions) and fails on anything that could read or write a file, import,
or reach a frame, code object or module other than math and numpy's.
"""

import types

import numpy as np
import pytest

from autoreward.contract import reward_program
from autoreward.contract.checker import collect_transitions

DEPTH = 4
SAFE_MODULES = ("numpy", "math")
SUSPECT_SOURCES = ("npyio", "datasource", "memmap", "format", "ctypeslib", "testing", "utils", "_methods", "records")


def _reachable_problems(roots: dict, refused=reward_program.FORBIDDEN_ATTRIBUTES):
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
    problems = _reachable_problems(program_roots)
    assert problems == {}, "\n".join(f"{path}: {what}" for path, what in sorted(problems.items())[:30])


def test_the_walk_sees_the_holes_it_guards_against():
    """Real numpy, and only the underscore rule: the walk finds the escapes, so its silence above means something."""
    problems = _reachable_problems({"np": np, "generator": (x for x in ())}, refused=frozenset())
    found = set(problems.values())
    assert "module builtins" in found  # np.ma.core.builtins
    assert "frame" in found  # generator.gi_frame
    assert any("npyio" in what for what in found)  # np.load, np.save, ...
