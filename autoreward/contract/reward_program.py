"""Reward programs: untrusted Python text that defines `compute_reward`.

The contract::

    def compute_reward(state, action, next_state):
        ...
        return total, {"name": component, ...}

`state` and `next_state` are `autoreward.sim.state.State` batches of N, `action`
an (N, action_dim) array; `total` and every component have shape (N,).
Only `numpy` and `math` may be imported. A program of another form
(`autoreward.contract.forms`) defines `compute_progress` or `compute_latent`
instead, with the same three arguments, and returns only the dict; which of
the three it defines is its form (`program_form`).

This module holds the static rules (`static_check`, which never runs the
code) and `load` (which does, and so is only ever called in a worker). The
static rules are a first filter that gives the author a precise message;
`load` runs the program with a few builtins and a numpy cut down to array
math (`autoreward.contract.restricted_numpy`). Neither is the isolation boundary:
that is the jailed worker process. Both are defense in depth: they close the
escapes the hostile corpus in `tests/hostile/` found: walks through frames of
a generator expression (`gi_frame.f_back.f_globals`), through Cython
functions' `func_globals`, through numpy submodules that hold Python's
`builtins`, numpy's and arrays' file functions; the memory behind an array
(`.base.obj` is the writable buffer under a State's read-only view) and
arrays made over raw memory (`np.ndarray(buffer=..., dtype="O")` forges
object pointers, `np.frombuffer`, object dtypes in any spelling the text
shows); and setting an attribute of anything (a class of the State reached
from a program would change what every State returns, the task score's
included; `math.pi = 3` would change every user of math in the worker).
"""

from __future__ import annotations

import ast
import builtins
import functools
import math
import re
import traceback
from typing import Callable

from autoreward.contract.restricted_numpy import SUBMODULES, SURFACE, holds_objects, restricted_numpy
from autoreward.records import CheckCategory, CheckResult
from autoreward.refused_names import FORBIDDEN_ATTRIBUTES

ENTRY_POINT = "compute_reward"
# Each reward form's function (`config.RewardForm`): a program defines exactly one of them.
ENTRY_POINTS = {"reward": ENTRY_POINT, "progress": "compute_progress", "latent": "compute_latent"}
PARAMETERS = ("state", "action", "next_state")
ALLOWED_MODULES = ("numpy", "math")
# Importable module paths: numpy's submodules other than these hold files, processes and other modules.
IMPORTABLE = frozenset({"math", "numpy", *(f"numpy.{name}" for name in SUBMODULES)})
# The names a program's text may use for numpy without an import.
NUMPY_NAMES = ("np", "numpy")
# The State's groups whose members are named from the model or the documentation (`state.bodies.torso`).
NAMED_GROUPS = ("bodies", "joints", "sites", "sensors", "obs")
# The file name compiled code carries, so tracebacks can be mapped back to the program's lines.
PROGRAM_FILENAME = "<reward>"

FORBIDDEN_NAMES = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "input",
        "breakpoint",
        "help",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "globals",
        "locals",
        "vars",
        "dir",
        "__import__",
        "__builtins__",
        "__loader__",
        "__spec__",
        "memoryview",
        "exit",
        "quit",
        "type",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
    }
)
# A string naming a special attribute is how format strings and dict lookups reach past the underscore rule.
DUNDER_STRING = re.compile(r"__\w+__")

# What a refused name or attribute is for, and what a reward does instead; the rest get GENERAL_ADVICE.
OBJECT_DTYPE_ADVICE = (
    "numpy's object dtype makes arrays of pointers to Python objects; a reward computes on numbers: use a "
    "float dtype (the default, `float`, np.float64), or int or bool"
)
RAW_MEMORY_ADVICE = (
    "it makes an array over raw memory; make arrays with np.zeros, np.full, np.array or np.asarray, and windows "
    "by slicing (x[:, 1:] - x[:, :-1])"
)
ADVICE = {
    "object": OBJECT_DTYPE_ADVICE,
    "object_": OBJECT_DTYPE_ADVICE,
    "type": "compare values, not types: isinstance(x, np.ndarray), x.dtype, x.shape",
    "getattr": "name the field itself: state.bodies.torso.pos, or state.resolve('bodies.torso.pos')",
    "setattr": "a reward program sets no attributes; keep values in local variables",
    "base": "it reaches the memory behind an array (a State array's `.base.obj` is the simulator's buffer); "
    "read the field itself, and use np.copy(x) where you need an array you can change",
    "obj": "it is the object behind a memoryview or an AttributeError; read the field itself, and use np.copy(x) "
    "where you need an array you can change",
    "data": "it is the memory behind an array; read the array itself, and use np.copy(x) where you need one you "
    "can change",
    "view": "it reads an array's bytes as another dtype or type; convert values with x.astype(float) or "
    "np.asarray(x, dtype=float), and change shapes with x.reshape(...)",
    "getfield": "it reads an array's bytes as another dtype; convert values with x.astype(float)",
    "ctypes": "it hands out raw pointers into memory; read the array itself",
    "frombuffer": RAW_MEMORY_ADVICE,
    "from_dlpack": RAW_MEMORY_ADVICE,
    "stride_tricks": RAW_MEMORY_ADVICE,
    "as_strided": RAW_MEMORY_ADVICE,
}
GENERAL_ADVICE = "a reward program reads the State's fields and computes with numpy's array math and math"

SAFE_BUILTINS = {
    name: getattr(builtins, name)
    for name in (
        "abs",
        "all",
        "any",
        "bool",
        "dict",
        "divmod",
        "enumerate",
        "filter",
        "float",
        "int",
        "isinstance",
        "len",
        "list",
        "map",
        "max",
        "min",
        "pow",
        "range",
        "reversed",
        "round",
        "set",
        "frozenset",
        "slice",
        "sorted",
        "str",
        "sum",
        "tuple",
        "zip",
        "print",
        "Exception",
        "ValueError",
        "TypeError",
        "ZeroDivisionError",
        "ArithmeticError",
        "KeyError",
        "IndexError",
        "RuntimeError",
        "True",
        "False",
        "None",
    )
}


def _fail(category: CheckCategory, message: str, line: int | None = None) -> CheckResult:
    return CheckResult(category=category, message=message, line=line)


def static_check(code: str, form: str | None = None) -> CheckResult:
    """Check a program without running it: syntax, imports, forbidden names, the entry point's signature."""
    try:
        tree = ast.parse(code, filename=PROGRAM_FILENAME)
    except SyntaxError as error:
        where = f"line {error.lineno}" + (f", column {error.offset}" if error.offset else "")
        text = (error.text or "").rstrip()
        shown = f": `{text.strip()}`" if text else ""
        return _fail(
            CheckCategory.SYNTAX, f"{error.msg} at {where}{shown}. The program must be valid Python 3.", error.lineno
        )

    aliases = _numpy_aliases(tree)
    from_numpy = _from_numpy(tree)
    dict_keys = {id(key) for node in ast.walk(tree) if isinstance(node, ast.Dict) for key in node.keys}
    problems = [
        (_position(node), problem)
        for node in ast.walk(tree)
        if (
            problem := _forbidden(node)
            or _numpy_problem(node, aliases)
            or _assignment_problem(node)
            or _raw_memory_problem(node, aliases, from_numpy, id(node) in dict_keys)
        )
        is not None
    ]
    if problems:
        (line, _, _), (category, message) = min(problems, key=lambda found: found[0])  # the first one read
        return _fail(category, message, line or None)

    entries = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ENTRY_POINTS.values()}
    expected = ENTRY_POINTS[form] if form is not None else None
    if expected is not None and expected not in entries or len(entries) != 1:
        return _fail(CheckCategory.SIGNATURE, _entry_point_problem(entries, form))
    entry = entries.pop()
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry]
    function = functions[-1]
    arguments = function.args
    names = tuple(a.arg for a in arguments.posonlyargs + arguments.args)
    required = len(names) - len(arguments.defaults)
    if len(names) < 3 or required > 3 or arguments.vararg or any(d is None for d in arguments.kw_defaults):
        return _fail(
            CheckCategory.SIGNATURE,
            f"`{entry}` takes ({', '.join(names)}) but must accept exactly three positional "
            f"arguments: ({', '.join(PARAMETERS)}).",
            function.lineno,
        )
    return CheckResult(category=CheckCategory.OK, message="passed the static rules")


RETURNS = {
    "reward": "returning (total, components)",
    "progress": "returning {name: progress} with each progress in [0, 1]",
    "latent": "returning {name: latent term}",
}


def _entry_point_problem(entries: set[str], form: str | None) -> str:
    """Why a program's top-level functions do not name its form: none of the entry points, two, or another form's."""
    if form is not None:
        entry = ENTRY_POINTS[form]
        other = (
            f" (it defines {', '.join(f'`{e}`' for e in sorted(entries))}, which is another form)" if entries else ""
        )
        return (
            f"the program defines no top-level function `{entry}`{other}; this is the {form} form: expected "
            f"`def {entry}(state, action, next_state):` {RETURNS[form]}."
        )
    if entries:
        return (
            f"the program defines {' and '.join(f'`{e}`' for e in sorted(entries))}; a program is of one form and "
            "defines exactly one of " + ", ".join(f"`{e}`" for e in ENTRY_POINTS.values()) + "."
        )
    return (
        f"the program defines no top-level function `{ENTRY_POINT}`; "
        f"expected `def {ENTRY_POINT}(state, action, next_state):` returning (total, components)."
    )


def program_form(code: str) -> str:
    """The form of a program's text: the one of `ENTRY_POINTS` it defines at top level ("reward" if none or several
    do, or it does not parse: the static rules then say why)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return "reward"
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    forms = [form for form, entry in ENTRY_POINTS.items() if entry in names]
    return forms[0] if len(forms) == 1 else "reward"


def _position(node: ast.AST) -> tuple[int, int, int]:
    """Where a node is read: its line, then its start, then its end (`a.b.c` and `a.b` start alike)."""
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0), getattr(node, "end_col_offset", 0) or 0


def _forbidden(node: ast.AST) -> tuple[CheckCategory, str] | None:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        for module in modules:
            if isinstance(node, ast.ImportFrom) and node.level:
                module = "." * node.level + module
            if module not in IMPORTABLE:
                allowed = " and ".join(ALLOWED_MODULES)
                detail = f" (and numpy's {', '.join(SUBMODULES)})" if module.startswith("numpy.") else ""
                return (
                    CheckCategory.FORBIDDEN,
                    f"line {node.lineno}: `import {module}` is not allowed; a reward program may import only "
                    f"{allowed}{detail}.",
                )
        return None
    if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
        advice = ADVICE.get(node.id, GENERAL_ADVICE)
        return CheckCategory.FORBIDDEN, f"line {node.lineno}: `{node.id}` is not allowed in a reward program; {advice}."
    if isinstance(node, ast.Name) and node.id.startswith("__"):
        return CheckCategory.FORBIDDEN, f"line {node.lineno}: the name `{node.id}` is not allowed."
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            return (
                CheckCategory.FORBIDDEN,
                f"line {node.lineno}: attribute `.{node.attr}` starts with an underscore; a reward program may "
                "use only public attributes.",
            )
        if node.attr in FORBIDDEN_ATTRIBUTES:
            advice = ADVICE.get(node.attr, GENERAL_ADVICE)
            # The State renames a body, joint or site that bears a refused name (refused_names.py).
            named = isinstance(node.value, ast.Attribute) and node.value.attr in NAMED_GROUPS
            renamed = f" (the model's `{node.attr}` is `{node.attr}_` in the State)" if named else ""
            return (
                CheckCategory.FORBIDDEN,
                f"line {node.lineno}: `.{node.attr}` is not allowed in a reward program; {advice}{renamed}.",
            )
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and DUNDER_STRING.search(node.value):
        return (
            CheckCategory.FORBIDDEN,
            f"line {node.lineno}: the string {node.value[:40]!r} names a special attribute; a reward program "
            "has no use for one.",
        )
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return CheckCategory.FORBIDDEN, f"line {node.lineno}: `global`/`nonlocal` is not allowed in a reward program."
    if isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.Yield, ast.YieldFrom)):
        return CheckCategory.FORBIDDEN, f"line {node.lineno}: generators and async code are not allowed."
    return None


def _root_name(node: ast.expr) -> str | None:
    """The name an expression such as `state.bodies.torso.pos[:, 0]` starts from (None for a call or literal)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _assignment_problem(node: ast.AST) -> tuple[CheckCategory, str] | None:
    """`x.attr = ...`, `x.attr += ...`, `del x.attr`, `for x.attr in ...`: refused whatever `x` is.

    A program has nothing of its own that needs an attribute set, and what it can reach is shared: the State's
    objects and classes (a descriptor set on a class changes what every State returns, the task score's
    included), the math module, numpy's Python classes, its own function.
    """
    if not isinstance(node, ast.Attribute) or not isinstance(node.ctx, (ast.Store, ast.Del)):
        return None
    target = ast.unparse(node)
    if _root_name(node) in PARAMETERS:
        return CheckCategory.WRITES_INPUT, writes_sentence(node.lineno, f"`{target}`")
    verb = "deletes" if isinstance(node.ctx, ast.Del) else "sets"
    return (
        CheckCategory.FORBIDDEN,
        f"line {node.lineno}: `{target}` {verb} an attribute; a reward program may not set or delete an attribute "
        "of anything (a module, a class, a function, the State), since other code reads them. Keep the value in a "
        f"local variable instead (`{node.attr} = ...`).",
    )


def _from_numpy(tree: ast.AST) -> dict[str, str]:
    """Names bound by `from numpy import NAME [as other]`: local name -> numpy's name."""
    return {
        alias.asname or alias.name: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "numpy" and not node.level
        for alias in node.names
    }


def _raw_memory_problem(
    node: ast.AST, aliases: dict[str, str], from_numpy: dict[str, str], dict_key: bool
) -> tuple[CheckCategory, str] | None:
    """A call of numpy's `ndarray` constructor, or a string that names an object dtype ("O", "object", "f8,O")."""
    if isinstance(node, ast.Call):
        function = node.func
        is_ndarray = (
            isinstance(function, ast.Attribute)
            and function.attr == "ndarray"
            and isinstance(function.value, ast.Name)
            and aliases.get(function.value.id) == ""
        ) or (isinstance(function, ast.Name) and from_numpy.get(function.id) == "ndarray")
        if is_ndarray:
            return (
                CheckCategory.FORBIDDEN,
                f"line {node.lineno}: `{ast.unparse(function)}(...)` makes an array over raw memory (its buffer=, "
                "offset= and strides= read any bytes as any dtype); make arrays with np.zeros, np.full, np.array "
                "or np.asarray. `np.ndarray` may still name the type, as in isinstance(x, np.ndarray).",
            )
        return None
    # Dict keys are component names: a term called "object" is no dtype.
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and not dict_key:
        # Every spelling of it has an O (typecode "O", "object", "f8,O"): other text is not handed to numpy.
        spelled = node.value.lower()
        if ("o" in spelled if isinstance(spelled, str) else b"o" in spelled) and holds_objects(node.value):
            return (
                CheckCategory.FORBIDDEN,
                f"line {node.lineno}: the string {node.value[:40]!r} names an object dtype; {OBJECT_DTYPE_ADVICE}.",
            )
    return None


def _numpy_aliases(tree: ast.AST) -> dict[str, str]:
    """Names that stand for numpy or one of its submodules in the program: name -> key of SURFACE."""
    aliases = {name: "" for name in NUMPY_NAMES}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "numpy" or (alias.name.startswith("numpy.") and alias.asname is None):
                    aliases[alias.asname or "numpy"] = ""
                elif alias.name.startswith("numpy."):
                    aliases[alias.asname] = alias.name.split(".", 1)[1]
        elif isinstance(node, ast.ImportFrom) and node.module == "numpy" and not node.level:
            for alias in node.names:
                if alias.name in SUBMODULES:
                    aliases[alias.asname or alias.name] = alias.name
    return aliases


def _numpy_problem(node: ast.AST, aliases: dict[str, str]) -> tuple[CheckCategory, str] | None:
    """`np.NAME` or `from numpy import NAME` where NAME is not in the allowlist of restricted_numpy."""
    if isinstance(node, ast.ImportFrom) and not node.level and node.module in IMPORTABLE - {"math"}:
        where = "" if node.module == "numpy" else node.module.split(".", 1)[1]
        for alias in node.names:
            if alias.name != "*" and alias.name not in SURFACE[where]:
                return _not_in_numpy(f"{node.module}.{alias.name}", node.lineno)
        return None
    if not isinstance(node, ast.Attribute) or not isinstance(node.value, (ast.Name, ast.Attribute)):
        return None
    chain: list[str] = []
    value: ast.AST = node
    while isinstance(value, ast.Attribute):
        chain.insert(0, value.attr)
        value = value.value
    if not isinstance(value, ast.Name) or value.id not in aliases:
        return None
    where = aliases[value.id]
    for depth, name in enumerate(chain):
        if name not in SURFACE[where]:
            return _not_in_numpy(".".join(["numpy", *filter(None, [where]), name]), node.lineno)
        if where or name not in SUBMODULES:
            return None  # past a module: attributes of a function or class are the other rules' business
        where = name
    return None


def _not_in_numpy(name: str, line: int) -> tuple[CheckCategory, str]:
    return (
        CheckCategory.FORBIDDEN,
        f"line {line}: `{name}` is not available to a reward program; it may use numpy's array math "
        "(ufuncs, array functions, linalg, random, fft), not numpy's file, process or introspection functions.",
    )


def _restricted_import(numpy, name, globals=None, locals=None, fromlist=(), level=0):
    """Python's import for a program: math, or the restricted numpy (never the real one).

    numpy's C code imports its own internals lazily through the `__import__` of the
    calling frame, which is this one while a program runs (`ndarray.mean` imports
    `numpy._core._methods`). Those imports get the real module: only numpy's C code
    sees it, since the static rules refuse every import statement naming it.
    """
    if not level and name.startswith("numpy.") and name not in IMPORTABLE:
        return builtins.__import__(name, globals, locals, fromlist, level)
    if level or name not in IMPORTABLE:
        raise ImportError(f"import of {name!r} is not allowed; only numpy and math")
    if name == "math":
        return math
    if fromlist and name != "numpy":
        return getattr(numpy, name.split(".", 1)[1])
    return numpy


RewardFunction = Callable[..., tuple]


def load(code: str) -> RewardFunction:
    """Run a program's top level and return its function (`compute_reward`, or its form's). Call only in a worker
    process.

    Raises `ValueError` with a CheckResult-ready message if the static rules fail.
    """
    result = static_check(code)
    if not result.ok:
        raise ValueError(result.message)
    numpy = restricted_numpy()
    namespace = {
        "__builtins__": {**SAFE_BUILTINS, "__import__": functools.partial(_restricted_import, numpy)},
        "__name__": "reward_program",
        "np": numpy,
        "numpy": numpy,
        "math": math,
    }
    exec(compile(code, PROGRAM_FILENAME, "exec"), namespace)
    return namespace[ENTRY_POINTS[program_form(code)]]


def program_line(error: BaseException, code: str) -> tuple[int | None, str]:
    """The deepest line of the reward program in an exception's traceback, and its text."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == PROGRAM_FILENAME]
    if not frames:
        return None, ""
    line = frames[-1].lineno
    lines = code.splitlines()
    text = lines[line - 1].strip() if line and 0 < line <= len(lines) else ""
    return line, text


# --- writes into the inputs ---------------------------------------------------------------------

# What numpy says when an operation writes into a read-only array: the State's arrays and the action are.
READ_ONLY_MESSAGES = ("read-only", "WRITEABLE flag")
IN_PLACE_METHODS = ("fill", "sort", "put", "partition", "resize", "itemset", "setfield", "byteswap", "setflags")


def input_written(error: BaseException, code: str, line: int | None) -> str | None:
    """For an exception raised by a write into `state`, `action` or `next_state`: a sentence for the designer.

    It names the line and, where the program's text shows it, the field written (`x += 1.0` after
    `x = next_state.joints.rootx.qpos` writes to `next_state.joints.rootx.qpos`). None for any other error.
    """
    # numpy's ValueError for a read-only array; the State's AttributeError for a field set or deleted.
    if not isinstance(error, (ValueError, AttributeError)) or not any(m in str(error) for m in READ_ONLY_MESSAGES):
        return None
    field = _written_field(code, line) if line else None
    return writes_sentence(line, f"`{field}`" if field else "an array of its inputs")


def writes_sentence(line: int | None, what: str) -> str:
    """What the designer is told about a write into the inputs, found by the static rules or when it ran."""
    where = f"line {line}: " if line else ""
    return (
        f"{where}the program writes to {what}; state, action and next_state are read-only, and writing into "
        "them in place (`+=`, a slice assignment, `out=`, `np.copyto`, `.fill`, `.sort`, setting a field) would "
        "change what the "
        "environment and the task score read. Compute into a new array instead: `x = x + 1.0`, or "
        "`x = np.copy(...)` first."
    )


def _written_field(code: str, line: int) -> str | None:
    """The field of the inputs that the statement at `line` writes into, as the program spells it."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    compound = (ast.FunctionDef, ast.For, ast.While, ast.If, ast.With, ast.Try)
    simple = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and not isinstance(n, compound)]
    statement = next((n for n in simple if n.lineno <= line <= (n.end_lineno or n.lineno)), None)
    if statement is None:
        return None
    target = _write_target(statement)
    if target is None:
        return None
    while isinstance(target, ast.Subscript):
        target = target.value
    if isinstance(target, ast.Name):
        origin = _last_assignment(tree, target.id, line)
        target = origin if origin is not None else target
        while isinstance(target, ast.Subscript) and _rooted_in_inputs(target.value):
            target = target.value
    return ast.get_source_segment(code, target)


def _write_target(statement: ast.stmt) -> ast.expr | None:
    if isinstance(statement, ast.AugAssign):
        return statement.target
    if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], (ast.Subscript, ast.Attribute)):
        return statement.targets[0]
    if isinstance(statement, ast.Delete) and statement.targets:
        return statement.targets[0]
    for call in (n for n in ast.walk(statement) if isinstance(n, ast.Call)):
        out = next((k.value for k in call.keywords if k.arg == "out"), None)
        if out is not None:
            return out.elts[0] if isinstance(out, ast.Tuple) and out.elts else out
        function = call.func
        if isinstance(function, ast.Attribute) and function.attr == "copyto" and call.args:
            return call.args[0]
        if isinstance(function, ast.Attribute) and function.attr in IN_PLACE_METHODS:
            return function.value
    return None


def _last_assignment(tree: ast.AST, name: str, line: int) -> ast.expr | None:
    """The value last assigned to `name` before `line`, when it is a field of the inputs (else None)."""
    found = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and node.lineno < line:
            if any(isinstance(t, ast.Name) and t.id == name for t in node.targets) and _rooted_in_inputs(node.value):
                if found is None or node.lineno > found.lineno:
                    found = node
    return found.value if found is not None else None


def _rooted_in_inputs(node: ast.expr) -> bool:
    return _root_name(node) in PARAMETERS
