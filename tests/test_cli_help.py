"""`--help` as a user reads it in an 80-column terminal: every line fits, and `run`'s fits on two screens."""

import os
import subprocess
import sys

import pytest
import typer.main

from autoreward.cli import app
from autoreward.cli.options import FEEDBACK_SOURCES, LLM_BACKENDS, PANELS, SCORE_SOURCES, SIMULATORS

COMMANDS = typer.main.get_command(app).commands  # name -> click command, as `autoreward --help` lists them

# `run --help` at 80 columns was 280 lines before its options were grouped into panels with one-line help;
# now about 90. Two screens of 50 lines is the bound.
RUN_HELP_LINES = 100


def help_at_80_columns(*command: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "autoreward", *command, "--help"],
        capture_output=True,
        text=True,
        env=dict(os.environ, COLUMNS="80"),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("command", [(), *((name,) for name in COMMANDS)], ids=lambda c: " ".join(c) or "autoreward")
def test_help_fits_80_columns(command):
    lines = help_at_80_columns(*command)
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, "\n".join(too_wide)
    assert len(lines) <= (RUN_HELP_LINES if command == ("run",) else 50), len(lines)


def test_run_help_groups_its_options_into_every_panel_in_order():
    text = "\n".join(help_at_80_columns("run"))
    where = [text.find(f"╭─ {name} ─") for name in PANELS]
    assert -1 not in where, [name for name, at in zip(PANELS, where) if at == -1]
    assert where == sorted(where)


def test_every_option_in_a_panel_says_its_default_and_its_words():
    """A panel's option shows no "[default: ...]" line and no type column: its own help must say both."""
    for name, command in COMMANDS.items():
        for parameter in command.params:
            if getattr(parameter, "rich_help_panel", None) not in PANELS:
                continue
            where, text, default = f"{name} {parameter.opts[0]}", parameter.help or "", parameter.default
            assert parameter.show_default is False, where
            if parameter.secondary_opts:  # --critic/--no-critic
                if default is not None:
                    assert f"(default: {'on' if default else 'off'}" in text, where
            elif default is not None and not parameter.is_flag:
                said = (f"default {default}", f"default: {default}", f"{default} (default)")
                assert any(words in text for words in said), where
    for name, option, words in (
        ("run", "feedback", FEEDBACK_SOURCES),
        ("run", "score", SCORE_SOURCES),
        ("run", "llm", LLM_BACKENDS),
        ("run", "simulator", SIMULATORS),
        ("train", "simulator", SIMULATORS),
    ):
        text = next(p.help for p in COMMANDS[name].params if p.name == option)
        assert all(word in text for word in words), (name, option, text)
