"""Where the shipped data folders (`envs/`, `prompts/`) are, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `name` shipped with autoreward.

    A wheel carries it inside the package (`autoreward/envs`); a source
    checkout or an editable install has it at the repository's top level.
    """
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"autoreward's {name!r} folder is missing from {PACKAGE_DIR} and its parent")
