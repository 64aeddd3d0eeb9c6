"""The `autoreward` command line."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from autoreward.api import DEFAULT_RUNS_DIR
from autoreward.config import FeedbackSource, LLMBackend, LLMSettings, PlannerSettings, ScoreSource, Simulator
from autoreward.errors import AutorewardError, Interrupted

app = typer.Typer(
    help="Turn a task written in words into reward code that trains a good policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)


def one_of(flag: str, words: tuple[str, ...]) -> dict:
    """Option settings for one of a few words (a config `Literal`'s values), checked at once.

    A bad value ends the command before anything runs, in autoreward's sentence: "--llm must be openai,
    replay or manual, got 'x'". The option's help names the words (`panel` leaves no type column to list them).
    """
    *rest, last = words

    def parse(value: str) -> str:
        if value not in words:
            raise typer.BadParameter(f"{flag} must be {', '.join(rest)} or {last}, got {value!r}")
        return value

    return {"parser": parse}


# The help panels that `--help` groups options into, one name wherever an option repeats across commands.
# A command's own few options stay in typer's "Options" panel, beside --help.
TASK_PANEL = "Task"
LOOP_PANEL = "Design loop"
STAGES_PANEL = "Loop stages"
TRAINING_PANEL = "Training"
FINAL_PANEL = "Final evaluation"
EXECUTION_PANEL = "Execution"
REVIEW_PANEL = "Review page"
LLM_PANEL = "LLM"
FOLDERS_PANEL = "Folders"
PANELS = (  # in the order `run --help` shows them
    TASK_PANEL,
    LOOP_PANEL,
    STAGES_PANEL,
    TRAINING_PANEL,
    FINAL_PANEL,
    EXECUTION_PANEL,
    REVIEW_PANEL,
    LLM_PANEL,
    FOLDERS_PANEL,
)


def panel(name: str) -> dict:
    """Option settings that put an option in the help panel `name`, its help the only text beside its name.

    Rich gives the help column what the columns of names, negations ("--no-analyzer-frames") and types leave
    it, and puts "[default: 3]" on a line of its own under any help that wraps: at 80 columns a type column
    ("<int range> [x>=1]", "[fitness|human|...]") left the help about 20 characters, and `run --help` ran to
    280 lines. So there is no type column and no default line: an option's help says what to give and its
    default ("(default 3)", "(default: on)"); tests/test_cli_help.py checks that every default is said.
    """
    return {"rich_help_panel": name, "metavar": "", "show_default": False}


LLM_BACKENDS = get_args(LLMBackend)
FEEDBACK_SOURCES = get_args(FeedbackSource)
SCORE_SOURCES = get_args(ScoreSource)
SIMULATORS = get_args(Simulator)

TasksDirOption = typer.Option(
    None, "--tasks-dir", help="A folder of extra task files (repeatable).", **panel(FOLDERS_PANEL)
)
RunsDirOption = typer.Option(
    DEFAULT_RUNS_DIR,
    "--runs-dir",
    help=f"Where run folders are written (default {DEFAULT_RUNS_DIR}).",
    **panel(FOLDERS_PANEL),
)
# The LLM's options of `run` and `chat`, one definition for both.
LLMOption = typer.Option(
    None, "--llm", **one_of("--llm", LLM_BACKENDS), help="openai (default), replay or manual.", **panel(LLM_PANEL)
)
ModelOption = typer.Option(
    None,
    "--model",
    envvar="AUTOREWARD_MODEL",
    show_envvar=False,
    help=f"The model (default: $AUTOREWARD_MODEL, else {LLMSettings.model}).",
    **panel(LLM_PANEL),
)
BaseUrlOption = typer.Option(
    None,
    "--base-url",
    envvar="OPENAI_BASE_URL",
    show_envvar=False,
    help="An OpenAI-compatible server (default: $OPENAI_BASE_URL, else OpenAI).",
    **panel(LLM_PANEL),
)
ApiKeyEnvOption = typer.Option(
    None,
    "--api-key-env",
    help=f"The environment variable holding the key (default {LLMSettings.api_key_variable}).",
    **panel(LLM_PANEL),
)
TranscriptOption = typer.Option(None, "--transcript", help="Replies for --llm replay.", **panel(LLM_PANEL))
PromptsDirOption = typer.Option(
    None, "--prompts-dir", help="Your own prompt templates (prompts/*.j2 by name).", **panel(FOLDERS_PANEL)
)
# The planner's options of `preview` and `chat`: each left out is the task's own ([preview]), else the default.
PLANNER = PlannerSettings()
PLANNER_PANEL = "Planner"
HorizonOption = typer.Option(
    None,
    "--horizon",
    help=f"Control steps planned ahead (default: the task's, else {PLANNER.horizon}).",
    **panel(PLANNER_PANEL),
)
SamplesOption = typer.Option(
    None,
    "--samples",
    help=f"Rollouts per control step (default: the task's, else {PLANNER.samples}).",
    **panel(PLANNER_PANEL),
)
NoiseOption = typer.Option(
    None,
    "--noise",
    help=f"Perturbation, a share of half the control range (default: the task's, else {PLANNER.noise}).",
    **panel(PLANNER_PANEL),
)
# The training options of `train` and `baseline`, one definition for both.
AlgoOption = typer.Option(None, "--algo", help="ppo or sac (default: the task's).", **panel(TRAINING_PANEL))
StepsOption = typer.Option(None, "--steps", help="Training steps (default: the task's).", **panel(TRAINING_PANEL))
SeedOption = typer.Option(0, "--seed", help="Training seed (default 0).", **panel(TRAINING_PANEL))
EnvsOption = typer.Option(
    None, "--envs", help="Environments stepped together (default: the task's).", **panel(TRAINING_PANEL)
)
EvalEpisodesOption = typer.Option(
    None, "--eval-episodes", help="Held-out episodes (default: the task's).", **panel(TRAINING_PANEL)
)
ExecutorOption = typer.Option(
    None, "--executor", help="Where trainings run: local (default) or ray.", **panel(EXECUTION_PANEL)
)
AddressOption = typer.Option(
    None,
    "--address",
    help="The Ray head, HOST:6379 (default: a private Ray).",
    **panel(EXECUTION_PANEL),
)


INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _until_interrupted(runner, said: Callable[[int], str]):
    """Ctrl-C (SIGINT) or SIGTERM ends the command within seconds: one line, and exit code 128 + the signal.

    The first signal raises `Interrupted` in the main thread, wherever it waits. `runner` (the command's
    `autoreward.Runner`, None before it has any) then stop their jobs (each running worker's group is killed
    within a second, none starts again) and `said(signal)`
    gives the line to print (a design run marks itself interrupted there and names its resume command).
    The process ends with os._exit, so threads still waiting on an LLM reply are not waited for; what they
    would have written is lost whole or not at all (records are written atomically, once complete), and
    workers not yet killed die with their parent (bubblewrap's --die-with-parent, PR_SET_PDEATHSIG).
    A second signal exits at once.
    """

    def first(signal_number, frame):
        for number in INTERRUPT_SIGNALS:
            signal.signal(number, at_once)
        raise Interrupted(signal_number)

    def at_once(signal_number, frame):
        os._exit(128 + signal_number)

    previous = {number: signal.signal(number, first) for number in INTERRUPT_SIGNALS}
    try:
        yield
    except Interrupted as interruption:
        number = interruption.signal_number or signal.SIGINT
        if runner is not None:
            runner.stop()
        errors.print(escape(said(number)), highlight=False)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + number)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def signal_name(number: int) -> str:
    return "Ctrl-C" if number == signal.SIGINT else signal.Signals(number).name


@contextmanager
def _clear_errors():
    """Print autoreward's own errors as one sentence and exit non-zero; let real bugs show their traceback."""
    try:
        yield
    except AutorewardError as error:
        errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)  # a message's [x] is text
        raise typer.Exit(2) from None
    except KeyboardInterrupt:  # Ctrl-C before the long part began (`_until_interrupted` handles that one)
        errors.print("interrupted (Ctrl-C)", highlight=False)
        raise typer.Exit(130) from None


def _given_llm(transcript: Path | None = None, **values) -> dict:
    """The LLMSettings fields the command line gave (None: not given), a transcript's path made absolute."""
    values["transcript"] = str(transcript.resolve()) if transcript else None
    return {name: value for name, value in values.items() if value is not None}


def _runner(name: str | None, address: str | None):
    """The command's `autoreward.Runner`: on the executor the command line asked for (a Ray cluster is joined
    here, once), in the jail AUTOREWARD_JAIL asks for; their progress is given to them with the bars."""
    from autoreward import Runner

    return Runner.connect(name or "local", address)


class ConsoleProgress:
    """Loop notes as timestamped lines, trainings as progress bars (`_progress_bars`'s handler)."""

    def __init__(self, bars):
        self._bars = bars

    def note(self, text: str) -> None:
        # Notes carry LLM prose and error messages: "[...]" in them is text, never rich markup.
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(text)}", highlight=False)

    def training(self, label: str, data: dict) -> None:
        self._bars(label, data)


@contextmanager
def _progress_bars():
    """A rich progress display and a handler that feeds worker progress messages into it.

    The display starts with the first training's message, not before: a question asked at the terminal
    before any training (a proposed task score to approve) is not drawn over by it."""
    progress = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed:>8.0f}/{task.total:.0f} steps"),
        TextColumn("{task.fields[fitness]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    bars: dict[str, int] = {}
    totals: dict[str, float] = {}
    started = threading.Lock()  # held once the display runs

    def handle(name: str, data: dict) -> None:
        if started.acquire(blocking=False):
            progress.start()
        if name not in bars:
            totals[name] = data.get("total") or 1
            bars[name] = progress.add_task(name, total=totals[name], fitness="")
        if data.get("stage") in ("training", "curve"):
            fitness = data.get("fitness")
            shown = "" if fitness is None else f"fitness {fitness:.3g}"
            # PPO finishes its last rollout past the budget (61 440 of 60 000): the total grows to the steps done.
            totals[name] = max(totals[name], data["step"])
            extra = {"fitness": shown} if fitness is not None else {}
            progress.update(bars[name], completed=data["step"], total=totals[name], **extra)
        elif data.get("stage") in ("evaluating", "video"):
            progress.update(bars[name], description=f"{name} ({'eval' if data['stage'] == 'evaluating' else 'video'})")

    try:
        yield handle
    finally:
        if started.locked():
            progress.stop()


SimulatorOption = typer.Option(
    "gymnasium",
    "--simulator",
    **one_of("--simulator", SIMULATORS),
    help="gymnasium (default), batched (one CPU batch) or warp (MuJoCo Warp).",
    **panel(TRAINING_PANEL),
)


DeviceOption = typer.Option(
    "cpu",
    "--device",
    help="Where policies learn (and warp steps): cpu (default), cuda or cuda:N.",
    **panel(TRAINING_PANEL),
)
