"""The design commands of the command line: `run`, `runs`, `show`, `report`, `export`, `demo`.

They register on the same Typer app (`cli/options.py`) as the commands on one task in `cli/task_commands.py`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from autoreward import api
from autoreward.cli.options import (
    EXECUTION_PANEL,
    FEEDBACK_SOURCES,
    FINAL_PANEL,
    FOLDERS_PANEL,
    LLM_PANEL,
    LOOP_PANEL,
    REVIEW_PANEL,
    SCORE_SOURCES,
    STAGES_PANEL,
    TASK_PANEL,
    TRAINING_PANEL,
    AddressOption,
    ApiKeyEnvOption,
    BaseUrlOption,
    ConsoleProgress,
    DeviceOption,
    ExecutorOption,
    LLMOption,
    ModelOption,
    PromptsDirOption,
    RunsDirOption,
    SimulatorOption,
    TasksDirOption,
    TranscriptOption,
    _clear_errors,
    _given_llm,
    _progress_bars,
    _runner,
    _until_interrupted,
    app,
    console,
    errors,
    one_of,
    panel,
    signal_name,
)
from autoreward.config import DEFAULT_CONFIRM_SEEDS, DEFAULT_PAGE_URL, Budget, LLMSettings, LoopConfig, Task
from autoreward.errors import AutorewardError

DEMO_TASK = "mountain_car_quick"


RUN = LoopConfig()  # the defaults of `run`'s options are a design run's own


def _on(flag: bool) -> str:
    return "on" if flag else "off"


@app.command()
def run(
    task: Optional[str] = typer.Argument(None, help="A task id or task file; with --env, the task in words."),
    env: Optional[str] = typer.Option(
        None, "--env", help="A gymnasium environment id, for a task in words.", **panel(TASK_PANEL)
    ),
    rounds: int = typer.Option(
        RUN.rounds, "--rounds", min=1, help=f"Design rounds (default {RUN.rounds}).", **panel(LOOP_PANEL)
    ),
    candidates: int = typer.Option(
        RUN.candidates,
        "--candidates",
        min=1,
        help=f"Candidates designed per round (default {RUN.candidates}).",
        **panel(LOOP_PANEL),
    ),
    reward_forms: str = typer.Option(
        ",".join(RUN.forms),
        "--forms",
        "--form",
        help="Reward forms, comma-separated: reward, progress (counts), latent (default: reward).",
        **panel(LOOP_PANEL),
    ),
    repairs: int = typer.Option(
        RUN.repair_attempts,
        "--repairs",
        min=0,
        help=f"Repairs after a failed check or review (default {RUN.repair_attempts}).",
        **panel(LOOP_PANEL),
    ),
    critic: bool = typer.Option(
        RUN.critic,
        "--critic/--no-critic",
        help=f"LLM review before training (default: {_on(RUN.critic)}).",
        **panel(STAGES_PANEL),
    ),
    analyzer: bool = typer.Option(
        RUN.analyzer,
        "--analyzer/--no-analyzer",
        help=f"LLM reading of what the best policy did (default: {_on(RUN.analyzer)}).",
        **panel(STAGES_PANEL),
    ),
    analyzer_frames: Optional[bool] = typer.Option(
        None,
        "--analyzer-frames/--no-analyzer-frames",
        help="Show the analyzer 6 video frames (default: on with --vlm-model or --feedback vlm).",
        **panel(STAGES_PANEL),
    ),
    prescreen: bool = typer.Option(
        RUN.prescreen,
        "--prescreen/--no-prescreen",
        help=f"Pre-screen on stored episodes (default: {_on(RUN.prescreen)}).",
        **panel(STAGES_PANEL),
    ),
    mpc_prescreen: bool = typer.Option(
        RUN.mpc_prescreen,
        "--mpc-prescreen/--no-mpc-prescreen",
        help=f"Preview each candidate, train best first (default: {_on(RUN.mpc_prescreen)}).",
        **panel(STAGES_PANEL),
    ),
    mpc_keep: float = typer.Option(
        RUN.mpc_keep,
        "--mpc-keep",
        help=f"Share of a round's previews trained (default {RUN.mpc_keep}: all).",
        **panel(STAGES_PANEL),
    ),
    halving: bool = typer.Option(
        RUN.halving,
        "--halving/--no-halving",
        help=f"Successive halving (default: {_on(RUN.halving)}).",
        **panel(STAGES_PANEL),
    ),
    halving_eta: int = typer.Option(
        RUN.halving_eta,
        "--halving-eta",
        min=2,
        help=f"Halving keeps 1/eta per rung (default {RUN.halving_eta}).",
        **panel(LOOP_PANEL),
    ),
    steps: Optional[int] = typer.Option(
        None, "--steps", help="Training steps (default: the task's).", **panel(TRAINING_PANEL)
    ),
    envs: Optional[int] = typer.Option(
        None, "--envs", help="Environments stepped together (default: the task's).", **panel(TRAINING_PANEL)
    ),
    eval_episodes: Optional[int] = typer.Option(
        None, "--eval-episodes", help="Held-out episodes (default: the task's).", **panel(TRAINING_PANEL)
    ),
    algo: Optional[str] = typer.Option(
        None, "--algo", help="ppo or sac (default: the task's).", **panel(TRAINING_PANEL)
    ),
    simulator: str = SimulatorOption,
    device: str = DeviceOption,
    final_seeds: int = typer.Option(
        RUN.final_seeds,
        "--final-seeds",
        min=1,
        help=f"Seeds to re-train the best on (default {RUN.final_seeds}).",
        **panel(FINAL_PANEL),
    ),
    confirm_seeds: Optional[int] = typer.Option(
        None,
        "--confirm-seeds",
        min=0,
        help=f"More seeds to confirm each round's best on (default {DEFAULT_CONFIRM_SEEDS}"
        + (" with --feedback fitness, else 0" if DEFAULT_CONFIRM_SEEDS else "")
        + ").",
        **panel(LOOP_PANEL),
    ),
    final_steps: Optional[int] = typer.Option(
        None, "--final-steps", help="Steps per final training (default: --steps).", **panel(FINAL_PANEL)
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        help="Trainings at once (default 0: one per CPU).",
        **panel(EXECUTION_PANEL),
    ),
    executor: Optional[str] = ExecutorOption,
    address: Optional[str] = AddressOption,
    videos: bool = typer.Option(
        RUN.videos,
        "--videos/--no-videos",
        help=f"A video of each policy (default: {_on(RUN.videos)}).",
        **panel(TRAINING_PANEL),
    ),
    seed: int = typer.Option(RUN.seed, "--seed", help=f"Training seed (default {RUN.seed}).", **panel(TRAINING_PANEL)),
    feedback: str = typer.Option(
        RUN.feedback,
        "--feedback",
        **one_of("--feedback", FEEDBACK_SOURCES),
        help=f"What picks a round's best: {', '.join(FEEDBACK_SOURCES)} (default {RUN.feedback}).",
        **panel(LOOP_PANEL),
    ),
    score: Optional[str] = typer.Option(
        None,
        "--score",
        **one_of("--score", SCORE_SOURCES),
        help="proposed (default at a terminal) or judged (none).",
        **panel(TASK_PANEL),
    ),
    accept_score: bool = typer.Option(
        False,
        "--accept-score",
        help="Take the LLM's score without asking, once checked.",
        **panel(TASK_PANEL),
    ),
    page_url: str = typer.Option(
        DEFAULT_PAGE_URL,
        "--page-url",
        help=f"Where `autoreward serve` shows the run (default {DEFAULT_PAGE_URL}).",
        **panel(REVIEW_PANEL),
    ),
    preference_timeout: Optional[float] = typer.Option(
        None,
        "--preference-timeout",
        min=1,
        help="Seconds to wait for a preference before stopping (default: no limit).",
        **panel(REVIEW_PANEL),
    ),
    llm: Optional[str] = LLMOption,
    model: Optional[str] = ModelOption,
    base_url: Optional[str] = BaseUrlOption,
    api_key_env: Optional[str] = ApiKeyEnvOption,
    vlm_model: Optional[str] = typer.Option(
        None, "--vlm-model", help="The vision model (default: --model).", **panel(LLM_PANEL)
    ),
    vlm_base_url: Optional[str] = typer.Option(
        None, "--vlm-base-url", help="Its server (default: --base-url).", **panel(LLM_PANEL)
    ),
    transcript: Optional[Path] = TranscriptOption,
    llm_attempts: Optional[int] = typer.Option(
        None,
        "--llm-attempts",
        min=1,
        help=f"Tries per LLM call (default {LLMSettings.attempts}).",
        **panel(LLM_PANEL),
    ),
    llm_timeout: Optional[float] = typer.Option(
        None,
        "--llm-timeout",
        min=0.1,
        help=f"Seconds to wait for a reply (default {LLMSettings.timeout_seconds:g}).",
        **panel(LLM_PANEL),
    ),
    temperature: float = typer.Option(
        RUN.temperature,
        "--temperature",
        help=f"The designer's temperature (default {RUN.temperature}).",
        **panel(LLM_PANEL),
    ),
    prompts_dir: Optional[Path] = PromptsDirOption,
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue this interrupted run folder.", **panel(FOLDERS_PANEL)
    ),
    runs_dir: Path = RunsDirOption,
    tasks_dir: Optional[list[Path]] = TasksDirOption,
) -> None:
    """Design a reward for a task: rounds of LLM candidates, checked, reviewed, trained and analysed."""
    with _clear_errors():
        given = _given_llm(
            transcript,
            backend=llm,
            model=model,
            base_url=base_url,
            api_key_variable=api_key_env,
            attempts=llm_attempts,
            timeout_seconds=llm_timeout,
            vlm_model=vlm_model,
            vlm_base_url=vlm_base_url,
        )
        if resume is not None:  # the run's own LLM settings and executor, except those given again
            config = api.Run.open(resume).config
            runner = _runner(executor or config.loop.executor, address or config.loop.ray_address)
            approve = None if config.loop.accept_score else _terminal_approval(config.task)
            _design(runner, page_url, preference_timeout, resume=resume, changed_llm=given, approve_score=approve)
            return
        settings = LLMSettings(**given)
        chosen = _task_for_run(task, env, tasks_dir)
        if feedback == "synthetic" and chosen.fitness is None:
            raise AutorewardError(
                f"--feedback synthetic ranks policies by the task's fitness, and {chosen.id} has none; "
                "use --feedback human or llm"
            )
        score = _score_option(chosen, score, accept_score)
        chosen_settings = {
            "rounds": rounds,
            "candidates": candidates,
            "forms": tuple(name.strip() for name in reward_forms.split(",") if name.strip()),
            "repair_attempts": repairs,
            "critic": critic,
            "analyzer": analyzer,
            "analyzer_frames": analyzer_frames,
            "prescreen": prescreen,
            "mpc_prescreen": mpc_prescreen,
            "mpc_keep": mpc_keep,
            "feedback": feedback,
            "halving": halving,
            "halving_eta": halving_eta,
            "final_seeds": final_seeds,
            "final_steps": final_steps,
            "confirm_seeds": confirm_seeds,
            "workers": workers or None,
            "executor": executor or "local",
            "ray_address": address,
            "temperature": temperature,
            "algo": algo,
            "steps": steps,
            "envs": envs,
            "eval_episodes": eval_episodes,
            "seed": seed,
            "simulator": simulator,
            "device": device,
            "videos": videos,
            "score": score,
            "accept_score": accept_score,
        }
        # Every flag's mistake, and settings that cannot run together, are one sentence before Ray is started.
        loop = api.loop_config(chosen, settings, **{k: v for k, v in chosen_settings.items() if v is not None})
        if loop.problem() is not None:
            raise AutorewardError(loop.problem())
        runner = _runner(executor, address)  # an unreachable cluster fails before a run folder is made
        if not workers:
            loop = replace(loop, workers=runner.executor.capacity() or loop.workers)
        approve = None if accept_score else _terminal_approval(chosen)
        _design(
            runner,
            page_url,
            preference_timeout,
            task=chosen,
            llm=settings,
            loop=loop,
            runs_dir=runs_dir,
            prompts_dir=prompts_dir,
            approve_score=approve,
        )


def _score_option(task: Task, score: Optional[str], accept: bool) -> str:
    """How a task in words is scored: as asked; by default proposed at a terminal (or with --accept-score)."""
    if task.fitness is not None:
        if score is not None or accept:
            raise AutorewardError(
                f"--score and --accept-score are for a task given in words; {task.id} has its own task score"
            )
        return "judged"
    if accept and score == "judged":
        raise AutorewardError("--accept-score accepts a proposed task score, and --score judged asks for none")
    if score is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
        score = "proposed" if interactive or accept else "judged"
    return score


def _task_for_run(task: Optional[str], env: Optional[str], tasks_dir) -> Task:
    if env is not None:
        if not task:
            raise AutorewardError('with --env, say the task in words: autoreward run --env Hopper-v5 "hop in place"')
        return api.load_task(env, description=task)  # a missing package is one sentence, before a run folder
    if not task:
        raise AutorewardError("name a task (see `autoreward tasks`), or give --env ENV and the task in words")
    return api.load_task(task, tasks_dir or ())


def _design(runner, page_url: str = DEFAULT_PAGE_URL, preference_timeout: float | None = None, **design) -> api.Run:
    """`autoreward.design` with `design`'s arguments, on `runner` (the command's Runner), at the terminal: the run
    folder said at once,
    progress bars, Ctrl-C that marks the run interrupted and names its resume command, and the final table.

    `page_url` and `preference_timeout` belong to this invocation, not to the run: a resume may wait
    differently."""
    opened: list[api.Run] = []

    def on_open(run: api.Run) -> None:
        opened.append(run)
        console.print(f"run folder: [bold]{run.path}[/]  (resume with: autoreward run --resume {run.path})")

    def interrupted(number: int) -> str:
        if not opened:
            return f"interrupted ({signal_name(number)}) before a run folder was made"
        opened[0].mark_interrupted(signal_name(number))
        path = opened[0].path
        return f"interrupted ({signal_name(number)}); resume the run with: autoreward run --resume {path}"

    with _until_interrupted(runner, interrupted), _progress_bars() as bars:
        run = api.design(
            runner=runner.reporting_to(ConsoleProgress(bars)),
            page_url=page_url,
            preference_timeout=preference_timeout,
            on_open=on_open,
            **design,
        )
    _print_final(run)
    return run


def _terminal_approval(task: Task):
    """A person decides at the terminal (or on standard input): accept the score, edit it in $EDITOR, or reject it."""

    def approve(proposal):
        edited = False
        while True:
            _show_proposal(proposal)
            choices = ("accept", "edit", "reject") if proposal.problem is None else ("edit", "reject")
            answer = typer.prompt(f"{', '.join(choices[:-1])} or {choices[-1]}?", default=choices[0]).strip().lower()
            chosen = next((c for c in choices if answer and c.startswith(answer)), None)
            if chosen is None:
                errors.print(f"answer {' or '.join(choices)} (or its first letter), not {answer!r}", highlight=False)
            elif chosen == "accept":
                return proposal.decided("edited" if edited else "accepted", "a person at the terminal")
            elif chosen == "reject":
                return proposal.decided("rejected", "a person at the terminal")
            else:
                text = _edited(proposal.text)
                if text is not None:
                    proposal, edited = api.examine_score(text, task), True

    return approve


def _edited(text: str) -> str | None:
    """`text` as the person leaves it in $VISUAL or $EDITOR (vi when neither is set); None when it cannot run."""
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix="autoreward-score-") as folder:
        path = Path(folder) / "task_score.toml"
        path.write_text(text)
        try:
            finished = subprocess.run([*shlex.split(editor), str(path)])
        except OSError as error:
            errors.print(f"the editor {editor!r} could not be started ({error.strerror}); set EDITOR", highlight=False)
            return None
        if finished.returncode != 0:
            errors.print(f"the editor {editor!r} exited with status {finished.returncode}; the score is unchanged")
            return None
        return path.read_text()


def _show_proposal(proposal) -> None:
    console.print("\n[bold]The task score the LLM proposes[/] (it ranks policies; the designer never sees it):")
    console.print(escape(proposal.text), highlight=False)
    if proposal.problem is not None:
        console.print(f"[bold red]it cannot be used:[/] {escape(proposal.problem)}", highlight=False)
    else:
        console.print(
            f"on real states: an episode of random actions scores {proposal.random_score:.4g}, "
            f"one of standing still {proposal.still_score:.4g}",
            highlight=False,
        )


def _print_final(run: api.Run) -> None:
    store, final, task = run.store, run.final, run.config.task
    table = Table(title=f"{task.id}: best reward {final.candidate_id}", show_header=False)
    if final.fitness_mean is not None:
        table.add_row(
            "task score", f"{final.fitness_mean:.4g} ± {final.fitness_std:.2g} over seeds {list(final.seeds)}"
        )
        table.add_row(
            f"human ({final.human_name}) / sparse",
            f"{final.human_fitness:.4g} ± {final.human_spread or 0.0:.2g} / "
            f"{final.sparse_fitness:.4g} ± {final.sparse_spread or 0.0:.2g}",
        )
    else:
        table.add_row("task score", f"none: the task has no fitness; the best was chosen by {run.chosen_by()}")
    if final.score_mean is not None:
        table.add_row("human-normalized", final.normalized_sentence())
    screened = [c for c in run.candidates if c.screening_agreement is not None]
    if screened:
        rounds = [store.load_round(number) for number in sorted({c.round for c in screened})]
        saved = sum(r.steps_saved for r in rounds if r is not None)
        dropped = sum(c.status == "prescreened_out" for c in screened)
        table.add_row(
            "pre-screening",
            f"{len(screened)} candidate{'s' if len(screened) != 1 else ''} scored on stored episodes before training; "
            f"{dropped} not trained ({saved:,} training steps saved)",
        )
    totals = store.llm_totals()
    table.add_row("LLM calls", f"{totals.calls} ({totals.paid_calls} paid)")
    console.print(table)
    # Below the table, not in it: a path to copy stays whole on one line, at any terminal width.
    exported, report = store.path / "export" / "reward.py", store.path / "report.html"
    console.print(f"exported: {exported} (report: reward_report.md beside it)", soft_wrap=True, highlight=False)
    console.print(f"report: {report} (open it in a browser: code, curves and videos)", soft_wrap=True, highlight=False)


@app.command()
def runs(runs_dir: Path = RunsDirOption) -> None:
    """A table of the design runs and their best scores, newest first."""
    table = Table("run", "task", "status", "best", "task score", "normalized")
    for row in api.runs(runs_dir):
        score = "-" if row.score_mean is None else f"{row.score_mean:.3f} ± {row.score_std:.3f}"
        fitness = "-" if row.best_fitness is None else f"{row.best_fitness:.4g}"
        table.add_row(row.name, row.task, row.status, row.best_candidate or "-", fitness, score)
    # At its natural width, never cut to the terminal's: a run's name is what `show` and `--resume` take, whole.
    width = Measurement.get(console, console.options.update(width=10_000), table).maximum
    Console(width=max(width, console.width), soft_wrap=True).print(table)


@app.command()
def show(
    run_folder: Path = typer.Argument(..., help="A run folder, or a run's name as `autoreward runs` prints it."),
    runs_dir: Path = RunsDirOption,
) -> None:
    """Show a run: its status, rounds, candidates, scores and failure modes."""
    with _clear_errors():
        run = api.Run.open(_run_folder(run_folder, runs_dir))
        console.print(f"status: {escape(run.status)}", highlight=False)
        console.print(Markdown(run.report()))


def _run_folder(given: Path, runs_dir: Path) -> Path:
    """A run folder as given, or the run of that name in `runs_dir` (the name `autoreward runs` prints)."""
    if not (given / "config.json").exists() and len(given.parts) == 1 and (runs_dir / given / "config.json").exists():
        return runs_dir / given
    return given


@app.command()
def report(
    run_folder: Path = typer.Argument(..., help="A run folder, finished or not."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write it (default: RUN/report.html)."),
) -> None:
    """Write a run as one self-contained HTML file.

    It holds the task, the settings, every candidate's code, checks, reviews,
    curves and video, and the final scores against the baselines."""
    with _clear_errors():
        path = api.Run.open(run_folder).html_report(output)
    console.print(f"wrote {path} (videos are linked relative to it: keep it beside the run folder, or send both)")


@app.command()
def export(
    run_folder: Path = typer.Argument(..., help="A finished run folder."),
    output: Path = typer.Option(Path("reward.py"), "-o", "--output", help="Where to write the module."),
    policy: bool = typer.Option(
        False,
        "--policy",
        help="Also write the trained policy of the best final seed (SB3 zip, and its normalization) beside it.",
    ),
) -> None:
    """Write a run's best reward as a self-contained Python module, with a reward report beside it."""
    with _clear_errors():
        path = api.Run.open(run_folder).export(output, policy=policy)
    written = [path, path.parent / f"{path.stem}_report.md"]
    if policy:
        written += [path.parent / f"{path.stem}_{name}" for name in ("policy.npz", "normalizer.npz")]
    shown = ", ".join(str(file) for file in written if file.exists())
    console.print(f"wrote {shown}", soft_wrap=True, highlight=False)
    console.print(f"use it: import {path.stem}; model, normalizer = {path.stem}.train()  # as autoreward trained it")
    if policy:
        console.print(
            f"its policy: model, normalizer = {path.stem}.load_policy(); {path.stem}.watch(model, normalizer)"
        )


@app.command()
def evaluate(
    run_folder: Path = typer.Argument(
        ..., help="A finished run folder, or a run's name as `autoreward runs` prints it."
    ),
    algo: Optional[str] = typer.Option(
        None, "--algo", help="ppo or sac (default: the run's).", **panel(TRAINING_PANEL)
    ),
    normalize: bool = typer.Option(
        True,
        "--normalize/--no-normalize",
        help="VecNormalize observations and rewards (PPO), as autoreward trains (default: on).",
        **panel(TRAINING_PANEL),
    ),
    envs: Optional[int] = typer.Option(
        None, "--envs", help="Environments stepped together (default: the run's).", **panel(TRAINING_PANEL)
    ),
    seeds: Optional[int] = typer.Option(
        None, "--seeds", help="Seeds to train on (default: the run's final seeds).", **panel(TRAINING_PANEL)
    ),
    steps: Optional[int] = typer.Option(
        None, "--steps", help="Steps per training (default: the final evaluation's).", **panel(TRAINING_PANEL)
    ),
    executor: Optional[str] = ExecutorOption,
    address: Optional[str] = AddressOption,
    runs_dir: Path = RunsDirOption,
) -> None:
    """Re-train a finished run's best reward and both baselines under another recipe.

    Does the designed reward still win when you train your way (e.g.
    --no-normalize, as plain SB3 trains)? `show` and the reports then list each
    recipe's scores side by side. Run the same command again to continue an
    interrupted one."""
    with _clear_errors():
        run = api.Run.open(_run_folder(run_folder, runs_dir))
        recipe = run.recipe(algo, normalize, envs, seeds, steps)  # a bad flag is one sentence, before Ray starts
        loop = run.config.loop
        runner = _runner(executor or loop.executor, address or loop.ray_address)
        console.print(f"evaluating {run.config.task.id}'s best reward under {recipe.describe()}", highlight=False)
        stopped = lambda number: (  # noqa: E731
            f"interrupted ({signal_name(number)}); the same autoreward evaluate command continues it "
            "(finished trainings are kept)"
        )
        with _until_interrupted(runner, stopped), _progress_bars() as bars:
            result = run.evaluate(algo, normalize, envs, seeds, steps, runner.reporting_to(ConsoleProgress(bars)))
        _print_recipes(run, result)


def _print_recipes(run: api.Run, latest) -> None:
    """The run's own final scores and each other recipe's, side by side."""
    table = Table(
        "training recipe",
        "designed",
        "human",
        "sparse",
        "human-normalized",
        title=f"{run.final.candidate_id} under each recipe",
    )
    for row in run.recipe_rows():
        table.add_row(*row)
    console.print(table)
    console.print(f"trainings: {run.store.recipe_dir(latest.recipe)}", soft_wrap=True, highlight=False)


@app.command()
def demo(
    runs_dir: Path = typer.Option(
        api.DEFAULT_RUNS_DIR,
        "--runs-dir",
        help=f"Where run folders are written (default {api.DEFAULT_RUNS_DIR}).",
        **panel(FOLDERS_PANEL),
    ),
    steps: int = typer.Option(
        60_000, "--steps", help="Training steps per candidate (default 60000).", **panel(TRAINING_PANEL)
    ),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Trainings at once (default 0: one per core).", **panel(EXECUTION_PANEL)
    ),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Also write the exported reward here."),
) -> None:
    """The whole loop, offline, on a built-in task, from a shipped transcript (about ten minutes on two cores)."""
    with _clear_errors():
        task = api.load_task(DEMO_TASK)
        transcript = api.DEMO_TRANSCRIPT
        console.print(
            f"[bold]autoreward demo[/]: designing a reward for '{task.description}'\n"
            f"LLM replies are replayed from {transcript}; training is real."
        )
        budget = Budget(algo="ppo", steps=steps, n_envs=4, eval_episodes=3, curve_points=10)
        loop = LoopConfig(
            rounds=2,
            candidates=3,
            repair_attempts=1,
            final_seeds=3,
            workers=workers or (os.cpu_count() or 1),
            budget=budget,
            prescreen=True,  # the demo shows every part of the loop, pre-screening (off in a run) too
        )
        settings = LLMSettings(backend="replay", model="", transcript=str(transcript))
        run = _design(_runner(loop.executor, loop.ray_address), task=task, llm=settings, loop=loop, runs_dir=runs_dir)
        if output is not None:
            console.print(f"exported to {run.export(output)}")


@app.command()
def serve(
    runs_dir: Path = RunsDirOption,
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="The address to listen on (default 127.0.0.1: this machine only).",
        **panel(REVIEW_PANEL),
    ),
    port: int = typer.Option(
        8765,
        "--port",
        min=0,
        max=65535,
        help="The port (default 8765; 0: any free one, printed).",
        **panel(REVIEW_PANEL),
    ),
) -> None:
    """Serve the review page: runs, candidates and the preference form.

    It shows every run's rounds and candidates (code, checks, reviews, curves,
    videos), and the form where a person gives the preferences a
    `--feedback human` run waits for."""
    from autoreward import ReviewServer

    with _clear_errors():
        if host not in ("127.0.0.1", "localhost", "::1"):
            errors.print(
                f"[bold yellow]warning:[/] listening on {host}: anyone who can reach this machine can read "
                "your runs and answer their preferences; the page has no login",
                highlight=False,
            )
        server = ReviewServer(runs_dir, host, port)
        console.print(f"review page: {server.url}  (runs from {runs_dir}; Ctrl-C stops it)", highlight=False)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
