"""The hostile corpus: every program is contained, gets its category, and the next check still works.

Programs the static rules refuse are checked in-process through
`check_program`, which must return before starting a worker (static rules
never run code). The others run in a jailed check worker while a fake API
key sits in this process's environment; afterwards no file they tried to
write exists, the key appears in none of their output files, and none of
their processes is left. `python -m tests.test_hostile` rewrites
docs/hostile_corpus.md from tests/hostile/expected.toml.
"""

from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path

import pytest

from autoreward.config import CheckOptions
from autoreward.contract import reward_program
from autoreward.contract.checker import check_program
from autoreward.records import CheckCategory

from .conftest import REPO, human_reward, worker_pids

CORPUS = Path(__file__).parent / "hostile"
EXPECTED = tomllib.loads((CORPUS / "expected.toml").read_text())
DOC = REPO / "docs" / "hostile_corpus.md"
FAKE_KEY = "sk-autoreward-hostile-" + "c0ffee" * 6
WRITES_TRIED = "autoreward-hostile-pwned*"  # every file a corpus program tries to write is /tmp/<this>
OPTIONS = CheckOptions(transitions=32, batch_size=16, rows_compared=4, idle_seconds=4.0)
STATIC = "static rules"


def _cases():
    for name, entry in EXPECTED.items():
        marks = [pytest.mark.slow] if entry.get("slow") else []
        yield pytest.param(name, marks=marks, id=name)


def _written_outside() -> list[Path]:
    return sorted(Path("/tmp").glob(WRITES_TRIED))


@pytest.fixture
def no_leftovers():
    for path in _written_outside():  # from a run of an older, leakier version: not this run's doing
        path.unlink()
    yield
    assert _written_outside() == [], "a corpus program wrote outside its output folder"


def test_the_corpus_and_its_expectations_match():
    programs = {p.stem for p in CORPUS.glob("*.py")}
    assert programs == set(EXPECTED), programs ^ set(EXPECTED)
    assert len(programs) >= 40
    for name, entry in EXPECTED.items():
        assert CheckCategory(entry["category"]) and entry["tries"] and entry["message"], name


@pytest.mark.parametrize("name", list(_cases()))
def test_each_hostile_program_is_contained_and_gets_its_category(
    name, cheetah, tmp_path, monkeypatch, no_leftovers, jail
):
    entry = EXPECTED[name]
    code = (CORPUS / f"{name}.py").read_text()
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    output = tmp_path / "check"

    result = check_program(cheetah, code, output, OPTIONS, jail=jail)

    assert result.category is CheckCategory(entry["category"]), result.message
    assert entry["message"] in result.message, result.message
    refused_statically = not reward_program.static_check(code).ok
    assert refused_statically == (entry["layer"] == STATIC), f"layer {entry['layer']!r}: {result.message}"
    if refused_statically:
        assert not output.exists(), "a statically refused program must not reach a worker"
        return
    for path in output.rglob("*"):
        assert not path.is_file() or FAKE_KEY.encode() not in path.read_bytes(), f"the API key leaked into {path}"
    deadline = time.monotonic() + 5
    while worker_pids(output) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_pids(output) == [], "a worker outlived its check"


def test_after_the_corpus_a_good_program_still_passes(cheetah, tmp_path, jail):
    result = check_program(cheetah, human_reward(cheetah), tmp_path, OPTIONS, jail=jail)
    assert result.ok, result.message


# --- the table in docs/hostile_corpus.md --------------------------------------------------------------

DOC_HEADER = """# The hostile corpus

Reward programs written to escape the sandbox or to break the checker, and
the outcome each one gets. The programs are `tests/hostile/NAME.py`; their
expectations are `tests/hostile/expected.toml`, from which this page is
generated (`python -m tests.test_hostile`); `tests/test_hostile.py` checks
both. *Layer* is what stops the program: the static rules refuse it before
anything runs; every other program runs in a jailed check worker, where the
restricted numpy, the restricted loader, the State view, the memory limit,
the supervisor (wall-clock and silence budgets) or the checker's own tests
catch it. Entries marked *slow* run with `-m slow` (and in CI).

For what the jail alone holds against code that got past every rule
(reading your home, writing outside the output folder, the network, the API
key, processes left behind), see `tests/test_jail.py`.

"""


def corpus_table() -> str:
    rows = ["| program | what it tries | outcome | layer |", "|---|---|---|---|"]
    for name, entry in EXPECTED.items():
        tries = entry["tries"].replace("|", "\\|")
        slow = " (slow)" if entry.get("slow") else ""
        rows.append(f"| `{name}` | {tries} | `{entry['category']}` | {entry['layer']}{slow} |")
    return "\n".join(rows) + "\n"


def corpus_page() -> str:
    counts: dict[str, int] = {}
    for entry in EXPECTED.values():
        counts[entry["layer"]] = counts.get(entry["layer"], 0) + 1
    summary = ", ".join(f"{count} by the {layer}" for layer, count in counts.items())
    return DOC_HEADER + f"{len(EXPECTED)} programs: {summary}.\n\n" + corpus_table()


def test_the_docs_list_every_corpus_program_with_its_outcome():
    assert DOC.read_text() == corpus_page(), "docs/hostile_corpus.md is stale: run python -m tests.test_hostile"


if __name__ == "__main__":
    DOC.write_text(corpus_page())
    print(f"wrote {DOC} ({len(EXPECTED)} programs)", file=sys.stderr)
