"""`python -m autoreward` is the `autoreward` command."""

from .cli import app

app()
