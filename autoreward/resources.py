"""Facts about the installed package: where its shipped data folders are (`envs/`, `prompts/`, templates), its version."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The Jinja2 templates of the reports, the review page and the exported module.
TEMPLATES_DIR = PACKAGE_DIR / "review" / "templates"


def data_dir(name: str) -> Path:
    """The folder `name` shipped with autoreward.

    A wheel carries it inside the package (`autoreward/envs`); a source
    checkout or an editable install has it at the repository's top level.
    """
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"autoreward's {name!r} folder is missing from {PACKAGE_DIR} and its parent")


def autoreward_version() -> str:
    """The installed autoreward's version, or "unknown" when it is run from a source tree without metadata."""
    try:
        return importlib.metadata.version("autoreward")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
