"""The `autoreward` command line: `app` with every command registered.

`options` holds the Typer app, the consoles and what several commands share;
`task_commands` the commands on one task (tasks, describe, check, train,
preview, baseline); `run_commands` those on design runs (run, runs, show,
report, export, evaluate, demo, serve); `chat_command` the interactive
session (chat).
"""

from autoreward.cli.options import app

# Importing the command modules registers their commands on `app`, in this order (--help lists them so).
# isort: off
from autoreward.cli import task_commands  # noqa: E402,F401
from autoreward.cli import run_commands  # noqa: E402,F401
from autoreward.cli import chat_command  # noqa: E402,F401
# isort: on

__all__ = ["app"]
