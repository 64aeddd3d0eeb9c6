"""The docs name only what exists: every `autoreward.x.y` and every `folder/file.py` they mention resolves.

A module that moves leaves its old name behind in the README, the docs, docstrings and comments; this test
finds it. It reads files and parses source with `ast`, and imports nothing but the (cheap) package itself.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import autoreward
from autoreward.resources import PACKAGE_DIR

ROOT = PACKAGE_DIR.parent

# `autoreward.loop.training.train`, not inside a path or URL (`~/.cache/autoreward.x`, `github.com/x/autoreward.git`),
# and not a name that goes on with a hyphen (`autoreward.egg-info`). "... in autoreward." ends a sentence: no match.
DOTTED = re.compile(r"(?<![\w./@-])autoreward((?:\.[A-Za-z_]\w*)+)(?![\w-])")
# `autoreward/loop/training.py`, `loop/training.py`, `tests/test_layout.py`: a path to a Python file.
PATH = re.compile(r"(?<![\w./<>-])((?:\w+/)+\w+\.py)(?![\w-]|\.\w)")
# A file named after the package (`autoreward.toml`) is not a module reference.
FILE_SUFFIXES = {"toml", "json", "yaml", "yml", "md", "txt", "log", "html", "csv", "py", "npz", "zip", "gz", "db"}


def _sources() -> list[Path]:
    """The files whose text is checked: the README, the docs, the package's and the benchmarks' source, the prompts."""
    return sorted(
        [ROOT / "README.md", *ROOT.glob("docs/*.md"), *PACKAGE_DIR.rglob("*.py"), *ROOT.glob("bench/*.py")]
        + [*ROOT.glob("prompts/*.j2")]
    )


def _module_file(parts: list[str]) -> Path | None:
    """The source file of the module `autoreward.<parts>`, or None when there is no such module."""
    base = PACKAGE_DIR.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_name(base.name + ".py")):
        if candidate.is_file():
            return candidate
    return None


@cache
def _top_level_names(path: Path) -> frozenset[str]:
    """The names a module's source defines at its top level: functions, classes, assignments, imports."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    if path == PACKAGE_DIR / "__init__.py":
        names |= set(autoreward.__all__)  # the public names, imported on first use by its `__getattr__`
    return frozenset(names)


def _resolves(dotted: str) -> bool:
    """Whether `autoreward.a.b.c` is a module, or a module followed by a name it defines.

    The longest prefix that is a module is taken; the first name after it must be defined in that module
    (what follows, such as a method of a class, is not checked).
    """
    parts = dotted.split(".")[1:]
    for length in range(len(parts), -1, -1):
        module = _module_file(parts[:length])
        if module is not None:
            rest = parts[length:]
            return not rest or rest[0] in _top_level_names(module)
    return False


def _python_file_exists(path: str) -> bool:
    """Whether `path` names a Python file of the repository, or of the package (`loop/training.py`).

    A path whose first folder is neither the repository's nor the package's belongs to another project
    (`gymnasium/core.py`) and is not checked, nor is a pattern.
    """
    folders = path.split("/")[:-1]
    if not any((base / folders[0]).is_dir() for base in (ROOT, PACKAGE_DIR)):
        return True
    if Path(path).stem.isupper():  # a pattern, as in `tests/hostile/NAME.py`
        return True
    return (ROOT / path).is_file() or (PACKAGE_DIR / path).is_file()


def _table_modules(lines: list[str]) -> list[tuple[int, str]]:
    """The modules of a `| folder | module | ... |` table (docs/architecture.md's), as package paths.

    An empty folder cell means the row above's folder; `top` is the package's own folder.
    """
    found, folder = [], ""
    for number, line in enumerate(lines, start=1):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or ".py" not in cells[1]:
            continue
        if cells[0]:
            folder = "" if cells[0] == "top" else cells[0].strip("`")
        found += [(number, folder + name) for name in re.findall(r"`(\w+\.py)`", cells[1])]
    return found


def _broken_references(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    where = path.relative_to(ROOT)
    broken = []
    for number, line in enumerate(lines, start=1):
        for match in DOTTED.finditer(line):
            dotted = match.group(0)
            if dotted.rsplit(".", 1)[1] not in FILE_SUFFIXES and not _resolves(dotted):
                broken.append(f"{where}:{number} names {dotted}, which is not a module or a name in one")
        for match in PATH.finditer(line):
            if not _python_file_exists(match.group(1)):
                broken.append(f"{where}:{number} names {match.group(1)}, which is not a file")
    if path.suffix == ".md":
        for number, module in _table_modules(lines):
            if not (PACKAGE_DIR / module).is_file():
                broken.append(f"{where}:{number} lists autoreward/{module} in its table, which is not a file")
    return broken


def test_the_resolver_tells_a_moved_module_from_one_that_exists():
    assert _resolves("autoreward.loop.training.train")
    assert _resolves("autoreward.sandbox")
    assert _resolves("autoreward.__version__")
    assert _resolves("autoreward.load_task")  # named in `__all__`, defined in autoreward.api
    assert not _resolves("autoreward.worker")  # moved to autoreward.sandbox.worker
    assert not _resolves("autoreward.loop.training.no_such_function")
    assert not DOTTED.search("see autoreward.")
    assert not DOTTED.search("https://example.org/autoreward.git")
    assert [m.group(1) for m in PATH.finditer("`loop/training.py`, https://x.org/a/b.py")] == ["loop/training.py"]
    assert _table_modules(["| `sandbox/` | `worker.py`, `gone.py` | ... |", "| | `jail.py` | ... |"]) == [
        (1, "sandbox/worker.py"),
        (1, "sandbox/gone.py"),
        (2, "sandbox/jail.py"),
    ]


def test_every_module_the_docs_and_docstrings_name_exists():
    broken = [line for path in _sources() for line in _broken_references(path)]
    assert not broken, "\n".join(["stale references (where the thing lives now goes in their place):", *broken])
