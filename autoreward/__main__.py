"""`python -m autoreward` is the `autoreward` command."""

from autoreward.cli import app

app()
