"""The `autoreward` command line: `app` with every command registered.

`options` holds the Typer app, the consoles and what several commands share;
`task_commands` the commands on one task (tasks, describe, check, train,
baseline); `run_commands` those on design runs (run, runs, show, report,
export, demo, serve). Importing them registers their commands on `app`.
"""

# isort: off  (commands are listed by --help in the order they register)
from autoreward.cli import run_commands, task_commands  # noqa: E402,F401
from autoreward.cli.options import app

# isort: on

__all__ = ["app"]
