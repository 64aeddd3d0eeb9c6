"""Reward programs: untrusted Python text that defines `compute_reward`.

The contract::

    def compute_reward(state, action, next_state):
        ...
        return total, {"name": component, ...}

`state` and `next_state` are `autoreward.state.State` batches of N, `action`
an (N, action_dim) array; `total` and every component have shape (N,).
Only `numpy` and `math` may be imported.

This module holds the static rules (`static_check`, which never runs the
code) and `load` (which does, and so is only ever called in a worker).
The static rules are a first filter that gives the author a precise message;
they are not the isolation boundary: that is the worker process.
"""

from __future__ import annotations

import ast
import builtins
import math
from typing import Callable

import numpy as np

from .records import CheckCategory, CheckResult

ENTRY_POINT = "compute_reward"
PARAMETERS = ("state", "action", "next_state")
ALLOWED_MODULES = ("numpy", "math")
# The file name compiled code carries, so tracebacks can be mapped back to the program's lines.
PROGRAM_FILENAME = "<reward>"

FORBIDDEN_NAMES = frozenset(
    {
        "eval", "exec", "compile", "open", "input", "breakpoint", "help",
        "getattr", "setattr", "delattr", "hasattr", "globals", "locals", "vars", "dir",
        "__import__", "__builtins__", "__loader__", "__spec__", "memoryview", "exit", "quit",
        "type", "object", "super", "classmethod", "staticmethod", "property",
    }
)  # fmt: skip
# Functions of numpy that reach outside the computation (files, the OS, code loading).
FORBIDDEN_NUMPY_ATTRIBUTES = frozenset(
    {
        "load", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt",
        "fromfile", "tofile", "memmap", "lib", "ctypeslib", "distutils", "f2py", "testing",
        "os", "sys", "DataSource", "show_config", "info", "source", "who", "frompyfunc",
    }
)  # fmt: skip

SAFE_BUILTINS = {
    name: getattr(builtins, name)
    for name in (
        "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "int",
        "isinstance", "len", "list", "map", "max", "min", "pow", "range", "reversed", "round",
        "set", "frozenset", "slice", "sorted", "str", "sum", "tuple", "zip", "print",
        "Exception", "ValueError", "TypeError", "ZeroDivisionError", "ArithmeticError",
        "KeyError", "IndexError", "RuntimeError", "True", "False", "None",
    )
}  # fmt: skip


def _fail(category: CheckCategory, message: str, line: int | None = None) -> CheckResult:
    return CheckResult(category=category, message=message, line=line)


def static_check(code: str) -> CheckResult:
    """Check a program without running it: syntax, imports, forbidden names, the entry point's signature."""
    try:
        tree = ast.parse(code, filename=PROGRAM_FILENAME)
    except SyntaxError as error:
        where = f"line {error.lineno}" + (f", column {error.offset}" if error.offset else "")
        text = (error.text or "").rstrip()
        shown = f": `{text.strip()}`" if text else ""
        return _fail(CheckCategory.SYNTAX, f"{error.msg} at {where}{shown}. The program must be valid Python 3.", error.lineno)

    for node in ast.walk(tree):
        problem = _forbidden(node)
        if problem is not None:
            return _fail(problem[0], problem[1], getattr(node, "lineno", None))

    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == ENTRY_POINT]
    if not functions:
        return _fail(
            CheckCategory.SIGNATURE,
            f"the program defines no top-level function `{ENTRY_POINT}`; "
            f"expected `def {ENTRY_POINT}(state, action, next_state):` returning (total, components).",
        )
    function = functions[-1]
    arguments = function.args
    names = tuple(a.arg for a in arguments.posonlyargs + arguments.args)
    required = len(names) - len(arguments.defaults)
    if (
        len(names) < 3
        or required > 3
        or arguments.vararg
        or any(d is None for d in arguments.kw_defaults)
    ):
        return _fail(
            CheckCategory.SIGNATURE,
            f"`{ENTRY_POINT}` takes ({', '.join(names)}) but must accept exactly three positional "
            f"arguments: ({', '.join(PARAMETERS)}).",
            function.lineno,
        )
    return CheckResult(category=CheckCategory.OK, message="passed the static rules")


def _forbidden(node: ast.AST) -> tuple[CheckCategory, str] | None:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        for module in modules:
            if isinstance(node, ast.ImportFrom) and node.level:
                module = "." * node.level + module
            if module.split(".")[0] not in ALLOWED_MODULES:
                return (
                    CheckCategory.FORBIDDEN,
                    f"line {node.lineno}: `import {module}` is not allowed; a reward program may import only "
                    f"{' and '.join(ALLOWED_MODULES)}.",
                )
        return None
    if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
        return CheckCategory.FORBIDDEN, f"line {node.lineno}: `{node.id}` is not allowed in a reward program."
    if isinstance(node, ast.Name) and node.id.startswith("__"):
        return CheckCategory.FORBIDDEN, f"line {node.lineno}: the name `{node.id}` is not allowed."
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            return (
                CheckCategory.FORBIDDEN,
                f"line {node.lineno}: attribute `.{node.attr}` starts with an underscore; a reward program may "
                "use only public attributes.",
            )
        if node.attr in FORBIDDEN_NUMPY_ATTRIBUTES:
            return CheckCategory.FORBIDDEN, f"line {node.lineno}: `.{node.attr}` is not allowed in a reward program."
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return CheckCategory.FORBIDDEN, f"line {node.lineno}: `global`/`nonlocal` is not allowed in a reward program."
    if isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.Yield, ast.YieldFrom)):
        return CheckCategory.FORBIDDEN, f"line {node.lineno}: generators and async code are not allowed."
    return None


def _restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level or name.split(".")[0] not in ALLOWED_MODULES:
        raise ImportError(f"import of {name!r} is not allowed; only numpy and math")
    return builtins.__import__(name, globals, locals, fromlist, level)


RewardFunction = Callable[..., tuple]


def load(code: str) -> RewardFunction:
    """Run a program's top level and return its `compute_reward`. Call only in a worker process.

    Raises `ValueError` with a CheckResult-ready message if the static rules fail.
    """
    result = static_check(code)
    if not result.ok:
        raise ValueError(result.message)
    namespace = {
        "__builtins__": {**SAFE_BUILTINS, "__import__": _restricted_import},
        "__name__": "reward_program",
        "np": np,
        "numpy": np,
        "math": math,
    }
    exec(compile(code, PROGRAM_FILENAME, "exec"), namespace)
    return namespace[ENTRY_POINT]
