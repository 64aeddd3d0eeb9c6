"""The package's shape: a folder per part of the flow, no import loops, no lower part importing a higher one."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from autoreward.resources import PACKAGE_DIR
from autoreward.sandbox.worker import JOBS, job_function

# From the bottom up; a module may import modules of its own level or lower (docs/architecture.md says why).
LEVELS = [
    ("records", "config", "serialize", "errors", "resources", "refused_names"),
    ("contract.reward_program", "contract.forms", "contract.restricted_numpy", "contract.passive", "contract.reads"),
    ("task.files", "task.fitness"),
    ("sim",),
    ("task.describe", "task.episodes", "task.standing"),
    ("sandbox",),
    ("contract.checker",),
    ("llm",),
    ("loop",),
    ("review",),
    ("api", "__init__"),
    ("cli", "__main__"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The autoreward modules a file imports, anywhere in it (a lazy import inside a function counts too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("autoreward"):
            base = node.module.removeprefix("autoreward").lstrip(".")
            submodules = [f"{base}.{alias.name}".lstrip(".") for alias in node.names]
            # `from autoreward.contract import reward_program` imports the module, not the (empty) package.
            targets = [m for m in submodules if m in modules] or [base]
        elif isinstance(node, ast.Import):
            targets = [a.name.removeprefix("autoreward.") for a in node.names if a.name.startswith("autoreward.")]
        names |= {t for t in targets if t in modules}
    return names


def _level(module: str) -> int:
    for level, prefixes in enumerate(LEVELS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"autoreward.{module} has no level in tests/test_layout.py's LEVELS")


def test_no_module_imports_one_that_imports_it_back():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    for start in graph:  # a depth-first walk from every module: a path back to it is a loop
        stack, seen = [(start, (start,))], set()
        while stack:
            name, path = stack.pop()
            for imported in graph[name]:
                assert imported != start, "import loop: " + " -> ".join(path + (start,))
                if imported not in seen:
                    seen.add(imported)
                    stack.append((imported, path + (imported,)))


def test_no_lower_part_imports_a_higher_one():
    modules = _modules()
    wrong = [
        f"{name} imports {imported}"
        for name, path in modules.items()
        for imported in _imports(path, modules)
        if _level(imported) > _level(name)
    ]
    assert wrong == []


def test_the_top_holds_a_handful_of_modules_and_the_rest_are_parts_of_the_flow():
    loose = sorted(p.name for p in PACKAGE_DIR.glob("*.py"))
    assert len(loose) <= 12, loose
    parts = sorted(p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").exists())
    assert parts == ["cli", "contract", "llm", "loop", "review", "sandbox", "sim", "task"]


def test_every_worker_job_names_a_function_that_exists():
    for kind, entry in JOBS.items():
        module, _, name = entry.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), kind
        assert job_function(kind) is getattr(importlib.import_module(module), name)


def test_the_command_line_uses_only_the_public_api():
    """cli/ parses options, calls the API and prints: it imports the public names (`autoreward.__all__`, through
    `autoreward` or `autoreward.api`), the settings and error types, the package's data folders and its own
    modules, and no module where run logic lives (loop/, review/, sandbox/, contract/, task/, llm/, sim/)."""
    import autoreward

    public = set(autoreward.__all__)
    allowed_modules = {"api", "config", "errors", "resources"}
    wrong = []
    for name, path in _modules().items():
        if not name.startswith("cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                wrong += [f"{name}: import {a.name}" for a in node.names if a.name.startswith("autoreward.")]
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("autoreward")):
                continue
            module = node.module.removeprefix("autoreward").lstrip(".")
            if module == "":
                wrong += [
                    f"{name}: from autoreward import {a.name}" for a in node.names if a.name not in public | {"api"}
                ]
            elif module not in allowed_modules and not module.startswith("cli"):
                wrong.append(f"{name}: from autoreward.{module} import ...")
    assert not wrong, "\n".join(wrong)


def test_jails_and_executors_are_made_once_per_run_in_the_runner():
    """One `Runner` per run: no part of the loop, the review or the API makes a jail or an executor of its own
    (`Jail.detect`, `Jail.from_setting`, `Jail.from_environment`, `LocalExecutor()`, `connect_executor`), so
    that a run's trainings share its executor's GPU count and Ctrl-C stops them all. `loop/runner.py` is
    where they are made."""
    makers = {("Jail", "detect"), ("Jail", "from_setting"), ("Jail", "from_environment")}
    wrong = []
    for name, path in _modules().items():
        if name == "loop.runner" or not (name.startswith(("loop", "review")) or name == "api"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            called = node.func
            if isinstance(called, ast.Attribute) and isinstance(called.value, ast.Name):
                if (called.value.id, called.attr) in makers:
                    wrong.append(f"{name}:{node.lineno}: {called.value.id}.{called.attr}()")
            elif isinstance(called, ast.Name) and called.id in ("LocalExecutor", "connect_executor"):
                wrong.append(f"{name}:{node.lineno}: {called.id}()")
    assert not wrong, "\n".join(wrong)
