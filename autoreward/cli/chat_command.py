"""`autoreward chat`: a reward designed with you, turn by turn, each one previewed; a call of `autoreward.chat`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from autoreward import api
from autoreward.cli.options import (
    FOLDERS_PANEL,
    LOOP_PANEL,
    TRAINING_PANEL,
    ApiKeyEnvOption,
    BaseUrlOption,
    HorizonOption,
    LLMOption,
    ModelOption,
    NoiseOption,
    PromptsDirOption,
    RunsDirOption,
    SamplesOption,
    SeedOption,
    StepsOption,
    TasksDirOption,
    TranscriptOption,
    _clear_errors,
    _given_llm,
    _runner,
    _until_interrupted,
    app,
    console,
    panel,
    signal_name,
)
from autoreward.config import LLMSettings, LoopConfig
from autoreward.errors import AutorewardError

CHAT = LoopConfig()
ASKED = "[bold]what should change?[/] (say it in words, or: train, quit) > "


@app.command()
def chat(
    task: Optional[str] = typer.Argument(None, help="A task id or task file (its environment has a MuJoCo model)."),
    person: Optional[Path] = typer.Option(
        None, "--person", help="Your answers from this file, one a line (default: asked here).", **panel(LOOP_PANEL)
    ),
    repairs: int = typer.Option(
        CHAT.repair_attempts,
        "--repairs",
        min=0,
        help=f"Repairs after a failed check or review (default {CHAT.repair_attempts}).",
        **panel(LOOP_PANEL),
    ),
    critic: bool = typer.Option(
        CHAT.critic, "--critic/--no-critic", help="LLM review of each reward (default: on).", **panel(LOOP_PANEL)
    ),
    horizon: Optional[int] = HorizonOption,
    samples: Optional[int] = SamplesOption,
    noise: Optional[float] = NoiseOption,
    steps: Optional[int] = StepsOption,
    seed: int = SeedOption,
    videos: bool = typer.Option(
        True, "--videos/--no-videos", help="Film each preview (default: on).", **panel(TRAINING_PANEL)
    ),
    llm: Optional[str] = LLMOption,
    model: Optional[str] = ModelOption,
    base_url: Optional[str] = BaseUrlOption,
    api_key_env: Optional[str] = ApiKeyEnvOption,
    transcript: Optional[Path] = TranscriptOption,
    prompts_dir: Optional[Path] = PromptsDirOption,
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue this session's folder.", **panel(FOLDERS_PANEL)
    ),
    runs_dir: Path = RunsDirOption,
    tasks_dir: Optional[list[Path]] = TasksDirOption,
) -> None:
    """Design a reward with the LLM turn by turn: each one previewed in a minute, you say what to change, then train."""
    with _clear_errors():
        given = _given_llm(transcript, backend=llm, model=model, base_url=base_url, api_key_variable=api_key_env)
        answers = _answers(person)
        folder: list[Path] = []

        def stopped(number: int) -> str:
            if not folder:
                return f"interrupted ({signal_name(number)}) before a session folder was made"
            api.Run.open(folder[0]).mark_interrupted(signal_name(number))
            return f"interrupted ({signal_name(number)}); continue with: autoreward chat --resume {folder[0]}"

        def on_open(run: api.Run) -> None:
            folder.append(run.path)
            console.print(f"session folder: [bold]{run.path}[/]  (continue with: autoreward chat --resume {run.path})")

        asked = _person(answers, folder)
        if resume is not None:
            runner = _runner(api.Run.open(resume).config.loop.executor, None)
            with _until_interrupted(runner, stopped):
                result = api.chat(
                    person=asked,
                    resume=resume,
                    changed_llm=given,
                    runner=runner.reporting_to(Notes()),
                    on_open=on_open,
                )
        else:
            if not task:
                raise AutorewardError(
                    "name a task (see `autoreward tasks`) to design a reward for, or --resume a session"
                )
            chosen = api.load_task(task, tasks_dir or ())
            planned = {"horizon": horizon, "samples": samples, "noise": noise}
            chosen = replace(
                chosen, planner=replace(chosen.planner, **{k: v for k, v in planned.items() if v is not None})
            )
            settings = LLMSettings(**given)
            loop = api.loop_config(
                chosen,
                settings,
                rounds=1,
                candidates=1,
                repair_attempts=repairs,
                critic=critic,
                seed=seed,
                videos=videos,
                **({"steps": steps} if steps is not None else {}),
            )
            runner = _runner("local", None)
            with _until_interrupted(runner, stopped):
                result = api.chat(
                    chosen,
                    asked,
                    llm=settings,
                    loop=loop,
                    runs_dir=runs_dir,
                    prompts_dir=prompts_dir,
                    runner=runner.reporting_to(Notes()),
                    on_open=on_open,
                )
    _print_end(result)


class Notes:
    """The session's notes as lines; no progress bars, which would draw over the question asked after each turn."""

    def note(self, text: str) -> None:
        console.print(f"[dim]{escape(text)}[/]", highlight=False)

    def training(self, label: str, data: dict) -> None:
        if data.get("stage") == "curve" and data.get("step"):
            console.print(f"[dim]{label}: {data['step']} steps[/]", highlight=False)


def _answers(path: Optional[Path]) -> list[str] | None:
    """The person's answers read from `path` (blank lines and # comments skipped), or None to ask here."""
    if path is None:
        return None
    try:
        text = path.read_text()
    except OSError as error:
        raise AutorewardError(f"cannot read the answers in {path}: {error.strerror}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _person(answers: list[str] | None, folder: list[Path]):
    """The person: each turn shown, then their answer read from the terminal or the next line of `answers`."""

    def asked(turn, preview) -> str:
        _print_turn(turn, preview, folder[0] if folder else None)
        if answers is not None:
            if not answers:
                raise AutorewardError(
                    f"the answers end before turn {turn.number} does: add a line (train or quit ends it) and "
                    f"continue with autoreward chat --resume {folder[0]}"
                )
            said = answers.pop(0)
            console.print(f"> {escape(said)}", highlight=False)
            return said
        try:
            return console.input(ASKED)
        except EOFError:
            raise AutorewardError(
                f"no answer (end of input); continue with autoreward chat --resume {folder[0]}"
            ) from None

    return asked


def _print_turn(turn, preview, folder: Optional[Path]) -> None:
    if preview is None:
        console.print(f"[bold]turn {turn.number}[/] ({turn.candidate_id}): no preview: {escape(turn.problem or '')}")
        return
    episode = preview.evaluation.episodes[0]
    parts = [f"{episode.length} steps"]
    if episode.fitness is not None:
        parts.insert(0, f"task score {episode.fitness:.4g}")
    components = ", ".join(f"{name} {value:.3g}" for name, value in episode.component_returns.items())
    parts.append(f"reward return {episode.reward_return:.4g}" + (f" ({components})" if components else ""))
    parts.append(f"planned in {preview.planning_seconds:.0f} s")
    console.print(f"[bold]turn {turn.number}[/] ({turn.candidate_id}): {escape('; '.join(parts))}", highlight=False)
    if preview.video and folder is not None:
        video = api.Run.open(folder).store.candidate_dir(turn.candidate_id, turn.number) / "preview" / preview.video
        console.print(f"  video: {video}  (autoreward serve shows it too)", soft_wrap=True, highlight=False)


def _print_end(result) -> None:
    trained = result.trained
    if trained is None:
        console.print(f"session ended after {len(result.turns)} turn(s); its folder: {result.folder}", highlight=False)
        return
    if trained.training is None:
        console.print(f"{trained.id}: the training failed: {escape(trained.message)}", highlight=False)
        raise typer.Exit(1)
    shown = "-" if result.score is None else f"{result.score:.4g}"
    console.print(
        f"{trained.id} trained: task score {shown} on its held-out episodes; folder {result.folder}", highlight=False
    )
