"""autoreward from Python: what the command line does, in the same few lines, with the same errors.

    import autoreward

    task = autoreward.load_task("half_cheetah_backward")          # a task id, a task file or an environment id
    print(autoreward.describe(task))                              # the State stub the designer reads
    result = autoreward.check(task, code)                         # the contract's verdict on a reward program
    trained = autoreward.train(task, code, steps=50_000)          # a jailed training, scored on held-out episodes
    print(trained.score, trained.folder)

    run = autoreward.design(task, llm=autoreward.LLMSettings(model="gpt-4o-mini"), rounds=2, candidates=4)
    run = autoreward.Run.open("runs/half_cheetah_backward__design__s0__...")
    run.best, run.candidates, run.final                           # records (autoreward.records)
    run.export("reward.py", policy=True)                          # the module, its report, the policy's arrays
    run.evaluate(normalize=False)                                 # the best and the baselines under another recipe
    print(run.report())                                           # the run told in Markdown

Every mistake of the caller's or of the input (an unknown task, a bad budget, a missing API key, a reward that
fails its check) raises an `AutorewardError` whose message is one sentence, as the command line prints it.
Reward programs run only in jailed worker processes (`autoreward.sandbox`), as from the command line. Where they
run, in what jail and who hears their progress is one `Runner` (`autoreward.loop.runner`), made once and passed
to each call (`runner=autoreward.Runner.connect("ray", progress=...)`); without one, each call makes its own:
this machine, the jail AUTOREWARD_JAIL asks for (on, off or require), and no progress shown.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from autoreward.config import (
    DEFAULT_CONFIRM_SEEDS,
    DEFAULT_PAGE_URL,
    REWARD_FORMS,
    Budget,
    CheckOptions,
    LLMSettings,
    LoopConfig,
    Task,
    TrainingConfig,
)
from autoreward.contract import forms
from autoreward.errors import AutorewardError
from autoreward.loop.run_folders import DEFAULT_RUNS_DIR, new_run_dir
from autoreward.loop.run_store import RunStore
from autoreward.loop.runner import Runner
from autoreward.records import CheckResult, NormalizedScore, RecipeResult, ScoreProposal, TrainingResult
from autoreward.resources import data_dir
from autoreward.sandbox.jail import Jail
from autoreward.serialize import write_json

# The demo's LLM replies (`autoreward demo`), replayed offline: `LLMSettings(backend="replay", transcript=...)`.
DEMO_TRANSCRIPT = data_dir("envs") / "demo" / "mountain_car_quick.md"

if TYPE_CHECKING:  # for annotations only: the design loop loads when a run starts
    from autoreward.loop.preview import PreviewResult
    from autoreward.loop.task_score import Approval


# --- one task -------------------------------------------------------------------


def load_task(
    name: str | Path, tasks_dir: Sequence[Path | str] = (), probe: bool = True, description: str | None = None
) -> Task:
    """The task `name` names: a task id (shipped, or in `tasks_dir`), a task file, or a gymnasium environment
    id (`Hopper-v5`, `package:Env-v0`), which gives a task without a description or score.

    With `description`, `name` is an environment id and the task is the one said in those words (a design
    run proposes its task score, or has a judge). With `probe`, its environment is made once, so a missing
    package is one sentence here."""
    from autoreward.task.files import ENVIRONMENT_ID, find_task, probe_environment, task_from_sentence

    name = str(name)
    if description is not None:
        task = task_from_sentence(name, description)
    elif ENVIRONMENT_ID.match(name):
        task = task_from_sentence(name, f"(no task given: environment {name} only)")
    else:
        task = find_task(name, tuple(Path(d) for d in tasks_dir))
    if probe:
        probe_environment(task)
    return task


def list_tasks(tasks_dir: Sequence[Path | str] = ()) -> tuple[dict[str, Task], dict[str, str]]:
    """Every task, shipped and in `tasks_dir`, by id; and beside them, the task files that could not be read,
    each with its one sentence (a broken file does not hide the others)."""
    from autoreward.task.files import load_tasks

    broken: dict[str, str] = {}
    found = load_tasks(tuple(Path(d) for d in tasks_dir), broken)
    return found, broken


def describe(task: Task, form: str = "reward") -> str:
    """The State stub a reward designer reads, generated from the environment (its MuJoCo model where it has one),
    ending with the function of `form` (reward, progress or latent) the designer writes."""
    from autoreward.task.describe import describe_task

    if form not in REWARD_FORMS:
        raise AutorewardError(f"a reward form is one of {', '.join(REWARD_FORMS)}, not {form!r}")
    return forms.with_signature(describe_task(task), form)


def check(task: Task, code: str, runner: Runner | None = None, training_batch_size: int | None = None) -> CheckResult:
    """The contract's verdict on a reward program for `task`, found by running it in a jailed worker on real
    states (`result.ok`, `result.category`, `result.message`); the check runs in `runner.jail` (default: the
    jail AUTOREWARD_JAIL asks for). The task's own fitness is checked first: a broken task file raises
    AutorewardError."""
    from autoreward.contract.checker import check_program, check_task

    jail = (runner or Runner.connect()).jail
    check_task(task, jail=jail)
    with tempfile.TemporaryDirectory(prefix="autoreward-check-") as folder:
        return check_program(task, code, Path(folder), CheckOptions(training_batch_size=training_batch_size), jail)


@dataclass(frozen=True)
class TrainedReward:
    """A reward program trained in its own run folder: the check, the training and its held-out scores."""

    folder: Path  # runs/<task>__train__s<seed>__<time>/: reward.py, config.json, check.json, training/, result.json
    check: CheckResult
    training: TrainingResult
    normalized: NormalizedScore | None = None  # against the baselines, when asked for

    @property
    def score(self) -> float | None:
        """The task score, mean over the held-out episodes (None for a task without one)."""
        return self.training.evaluation.fitness_mean

    @property
    def success_rate(self) -> float | None:
        return self.training.evaluation.success_rate


class RewardCheckFailed(AutorewardError):
    """A reward program given to `train` failed its check; `result` says how."""

    def __init__(self, result: CheckResult):
        super().__init__(f"the reward program failed its check ({result.category.value}): {result.message}")
        self.result = result


def training_config(
    task: Task,
    steps: int | None = None,
    seed: int = 0,
    algo: str | None = None,
    envs: int | None = None,
    eval_episodes: int | None = None,
    simulator: str = "gymnasium",
    device: str = "cpu",
    videos: bool = True,
    executor: str | None = None,
) -> TrainingConfig:
    """The settings of one training of `task`: its budget with the values given (each checked), the rest fixed."""
    budget = budget_with(task.budget, algo, steps, envs, eval_episodes)
    return TrainingConfig.from_budget(
        budget, seed=seed, simulator=simulator, video=videos, device=checked_device(device, executor)
    )


def train(
    task: Task,
    code: str,
    steps: int | None = None,
    seed: int = 0,
    algo: str | None = None,
    envs: int | None = None,
    eval_episodes: int | None = None,
    simulator: str = "gymnasium",
    device: str = "cpu",
    videos: bool = True,
    baselines: bool = False,
    runs_dir: Path | str = DEFAULT_RUNS_DIR,
    runner: Runner | None = None,
    reward_file: str | None = None,
    command: str | None = None,
    on_folder: Callable[[Path], None] | None = None,
    on_checked: Callable[[CheckResult], None] | None = None,
) -> TrainedReward:
    """Check `code`, train a policy on it and score it on held-out episodes, in a new run folder.

    `steps`, `algo`, `envs`, `eval_episodes`: the task's budget unless given. `baselines`: also train (or reuse)
    the human and sparse baselines and give the human-normalized score. `runner`: where the workers run, in
    what jail, and who hears their progress (the training's as "reward"; default `Runner.connect()`: this
    machine, the jail AUTOREWARD_JAIL asks for, silent). `on_folder` is told the run folder as
    soon as it is made (`reward_file` and `command` are recorded in its config.json), `on_checked` the check's
    verdict before training starts. Raises RewardCheckFailed
    when the program fails its check (the folder keeps `check.json`), WorkerError when the training fails."""
    from autoreward.contract.checker import check_task
    from autoreward.loop.baselines import load_or_train_baselines
    from autoreward.loop.training import train as train_policy

    config = training_config(task, steps, seed, algo, envs, eval_episodes, simulator, device, videos)
    runner = runner or Runner.connect()
    check_task(task, jail=runner.jail)  # before a run folder is made
    record = {"command": command, "task": task, "training": config, "reward_file": reward_file}
    folder, result = _checked_in_new_folder(
        task, code, "train", seed, runs_dir, record, config.n_envs, runner.jail, on_folder, on_checked
    )
    told = lambda data: runner.progress.training("reward", data)  # noqa: E731
    trained = train_policy(task, config, folder / "training", code, told, runner=runner)
    normalized = None
    if baselines:
        reference = load_or_train_baselines(task, config, Path(runs_dir), runner)
        normalized = reference.normalize(trained.evaluation.fitness_mean, task.fitness.higher_is_better)
    evaluation = trained.evaluation
    summary = {
        "task": task.id,
        "fitness": evaluation.fitness_mean,
        "fitness_std": evaluation.fitness_std,
        "fitness_description": task.fitness.description if task.fitness else None,
        "success_rate": evaluation.success_rate,
        "episode_length": evaluation.length_mean,
        "steps": trained.steps,
        "steps_per_second": trained.steps_per_second,
        "video": f"training/{trained.video}" if trained.video else None,
        "normalized": normalized,
    }
    write_json(folder / "result.json", summary)
    return TrainedReward(folder, result, trained, normalized)


def _checked_in_new_folder(
    task: Task,
    code: str,
    kind: str,
    seed: int,
    runs_dir: Path | str,
    record: dict,
    batch_size: int,
    jail: Jail,
    on_folder: Callable[[Path], None] | None,
    on_checked: Callable[[CheckResult], None] | None,
) -> tuple[Path, CheckResult]:
    """A new run folder of `kind` holding `reward.py`, `config.json` (`record`) and the program's check
    (`check.json`); RewardCheckFailed when the program fails it."""
    from autoreward.contract.checker import check_program

    folder = new_run_dir(Path(runs_dir), task.id, kind, seed)
    if on_folder is not None:
        on_folder(folder)
    (folder / "reward.py").write_text(code)
    write_json(folder / "config.json", record)
    result = check_program(task, code, folder / "check", CheckOptions(training_batch_size=batch_size), jail=jail)
    write_json(folder / "check.json", result)
    if on_checked is not None:
        on_checked(result)
    if not result.ok:
        raise RewardCheckFailed(result)
    return folder, result


@dataclass(frozen=True)
class PreviewedReward:
    """A reward program previewed by model-predictive control in its own run folder: the check and the
    episode (`autoreward.loop.preview.PreviewResult`: its task score, video and the reward's component returns)."""

    folder: Path  # runs/<task>__preview__s<seed>__<time>/: reward.py, config.json, check.json, preview/, result.json
    check: CheckResult
    preview: "PreviewResult"

    @property
    def score(self) -> float | None:
        """The episode's task score (None for a task without one)."""
        return self.preview.evaluation.fitness_mean


def preview(
    task: Task,
    code: str,
    horizon: int | None = None,
    samples: int | None = None,
    noise: float | None = None,
    knots: int | None = None,
    seed: int = 0,
    videos: bool = True,
    runs_dir: Path | str = DEFAULT_RUNS_DIR,
    runner: Runner | None = None,
    reward_file: str | None = None,
    command: str | None = None,
    on_folder: Callable[[Path], None] | None = None,
    on_checked: Callable[[CheckResult], None] | None = None,
) -> PreviewedReward:
    """Check `code`, then play one episode of `task` from its held-out reset with every action planned by
    model-predictive control on the reward (predictive sampling: `samples` perturbed action sequences over
    `horizon` control steps, each step), in a new run folder: its task score, video and reward returns,
    in seconds to minutes instead of a training. The planner's settings not given are the task's own
    (`task.planner`: its file's `[preview]`, else `autoreward.config.PlannerSettings`'s defaults); `runner` as
    for `train` (the progress is "preview"'s). Raises AutorewardError (one sentence) for a task without a MuJoCo
    model or settings that cannot plan, RewardCheckFailed when the program fails its check."""
    from autoreward.contract.checker import check_task
    from autoreward.loop.preview import preview as preview_episode
    from autoreward.loop.preview import preview_problem

    given = {"horizon": horizon, "samples": samples, "noise": noise, "knots": knots}
    settings = replace(task.planner, **{k: v for k, v in given.items() if v is not None})
    problem = settings.problem() or preview_problem(task)
    if problem is not None:
        raise AutorewardError(problem)
    runner = runner or Runner.connect()
    check_task(task, jail=runner.jail)  # before a run folder is made
    record = {"command": command, "task": task, "planner": settings, "seed": seed, "reward_file": reward_file}
    folder, result = _checked_in_new_folder(
        task, code, "preview", seed, runs_dir, record, settings.samples, runner.jail, on_folder, on_checked
    )
    told = lambda data: runner.progress.training("preview", data)  # noqa: E731
    previewed = preview_episode(
        task, code, folder / "preview", settings, runner=runner, on_progress=told, video=videos, seed=seed
    )
    evaluation = previewed.evaluation
    episode = evaluation.episodes[0]
    summary = {
        "task": task.id,
        "fitness": evaluation.fitness_mean,
        "fitness_description": task.fitness.description if task.fitness else None,
        "success_rate": evaluation.success_rate,
        "episode_length": evaluation.length_mean,
        "planning_seconds": previewed.planning_seconds,
        "video": f"preview/{previewed.video}" if previewed.video else None,
        "reward_return": episode.reward_return,
        "component_returns": episode.component_returns,
    }
    write_json(folder / "result.json", summary)
    return PreviewedReward(folder, result, previewed)


def baselines(
    task: Task,
    steps: int | None = None,
    seed: int = 0,
    algo: str | None = None,
    envs: int | None = None,
    eval_episodes: int | None = None,
    runs_dir: Path | str = DEFAULT_RUNS_DIR,
    runner: Runner | None = None,
):
    """The task's two baselines on this budget: the human one (its own reward) and the sparse one (its task score
    alone), each trained once and then read back from `runs_dir` (`autoreward.records.Baselines`); their
    progress goes to `runner.progress` as "human" and "sparse"."""
    from autoreward.contract.checker import check_task
    from autoreward.loop.baselines import load_or_train_baselines

    config = training_config(task, steps, seed, algo, envs, eval_episodes)
    runner = runner or Runner.connect()
    check_task(task, jail=runner.jail)
    return load_or_train_baselines(task, config, Path(runs_dir), runner)


# --- design runs ----------------------------------------------------------------


class Run:
    """A design run's folder, read through its records: `Run.open(path)`, or what `design` returns."""

    def __init__(self, store: RunStore):
        self.store = store

    @classmethod
    def open(cls, path: Path | str) -> "Run":
        """The run in `path`; AutorewardError when it is not a run folder."""
        return cls(RunStore.open(Path(path)))

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def config(self):
        """What was asked (`autoreward.config.RunConfig`): the task, the loop's and the LLM's settings."""
        return self.store.config()

    @property
    def status(self) -> str:
        """As `autoreward runs` shows it: "finished", "failed: <why>", "interrupted", ..., or "stopped (process
        gone)" for a run whose process died without saying so."""
        from autoreward.loop.run_store import shown_status

        return shown_status(self.path, self.store.status())

    @property
    def candidates(self):
        """Every candidate of every round so far (`autoreward.records.Candidate`), in order."""
        return self.store.candidates()

    @property
    def final(self):
        """The final evaluation (`autoreward.records.FinalResult`), or None while the run is not finished."""
        return self.store.load_final()

    @property
    def best(self):
        """The candidate the final evaluation re-trained (None while the run is not finished)."""
        final = self.final
        if final is None:
            return None
        return next(c for c in self.candidates if c.id == final.candidate_id)

    def export(self, path: Path | str | None = None, policy: bool = False) -> Path:
        """Write the best reward as a self-contained module (default `export/reward.py` in the run folder) with
        its reward report beside it; `policy`: with the best final seed's policy, as arrays. Returns the path."""
        from autoreward.review.run_export import export_run

        return export_run(self.store, path, with_policy=policy)

    def report(self) -> str:
        """The run told in Markdown (what `reward_report.md` holds)."""
        from autoreward.review.report import reward_report

        return reward_report(self.store)

    def html_report(self, path: Path | str | None = None) -> Path:
        """Write the run as one HTML file (default `report.html` in the run folder); returns its path."""
        from autoreward.review.html_report import write_html_report

        return write_html_report(self.store, Path(path) if path else None)

    def recipe(
        self,
        algo: str | None = None,
        normalize: bool = True,
        envs: int | None = None,
        seeds: int | None = None,
        steps: int | None = None,
    ):
        """The training recipe these values describe (`autoreward.loop.recipes.Recipe`), the run's own for any
        not given; AutorewardError for a bad value, or while the run has no best reward to re-train."""
        from autoreward.loop.recipes import recipe_of

        config = self.config
        budget_with(config.loop.budget, algo, steps, envs, None)  # a bad value is one sentence here
        if seeds is not None and seeds < 1:
            raise AutorewardError(f"--seeds must be at least 1, got {seeds}")
        if self.final is None:
            raise AutorewardError(
                f"{self.path} has no best reward yet: finish the run first with autoreward run --resume {self.path}"
            )
        return recipe_of(config, algo=algo, normalize=normalize, n_envs=envs, seeds=seeds, steps=steps)

    def evaluate(
        self,
        algo: str | None = None,
        normalize: bool = True,
        envs: int | None = None,
        seeds: int | None = None,
        steps: int | None = None,
        runner: Runner | None = None,
    ) -> RecipeResult:
        """Re-train the best reward and both baselines under another recipe (e.g. `normalize=False`, as plain
        SB3 trains); finished trainings are kept, so a second call continues an interrupted one. The run's
        HTML report is written again with the recipe's scores. `runner` default: the executor the run's
        settings name, silent."""
        from autoreward.loop.recipes import evaluate_recipe

        recipe = self.recipe(algo, normalize, envs, seeds, steps)
        loop = self.config.loop
        runner = runner or Runner.connect(loop.executor, loop.ray_address)
        result = evaluate_recipe(self.store, recipe, self.path.parent, runner)
        self.html_report()
        return result

    def mark_interrupted(self, how: str) -> None:
        """Record that the run was stopped from outside (`how`: "Ctrl-C", "SIGTERM"): its status says
        interrupted, its events say how, and `design(resume=...)` continues it."""
        self.store.set_status("interrupted")
        self.store.log_event("interrupted", signal=how)

    def recipe_rows(self) -> list[tuple[str, ...]]:
        """The best reward's scores under the run's own recipe, then under each one `evaluate` trained, as text:
        the recipe, the designed reward's task score, both baselines' and the human-normalized score."""
        from autoreward.review.report import recipe_rows

        return recipe_rows(self.recipe(), self.final, self.store.recipe_results())

    def chosen_by(self) -> str:
        """Who picked the best reward, in words: the task score, or for a task without one, whose preferences."""
        from autoreward.review.report import chosen_by

        return "its task score" if self.config.task.fitness is not None else chosen_by(self.config.loop.feedback)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status!r})"


def runs(runs_dir: Path | str = DEFAULT_RUNS_DIR):
    """One row per design run in `runs_dir`, newest first (`autoreward.records.RunSummary`: its name, task,
    status, best candidate and scores)."""
    from autoreward.loop.run_store import run_summaries

    return run_summaries(Path(runs_dir))


def design(
    task: Task | None = None,
    llm: LLMSettings | None = None,
    rounds: int = 3,
    candidates: int = 4,
    runs_dir: Path | str = DEFAULT_RUNS_DIR,
    resume: Path | str | None = None,
    loop: LoopConfig | None = None,
    runner: Runner | None = None,
    approve_score: Approval | None = None,
    page_url: str | None = None,
    preference_timeout: float | None = None,
    prompts_dir: Path | None = None,
    changed_llm: dict[str, Any] | None = None,
    on_open: Callable[["Run"], None] | None = None,
    **settings,
) -> Run:
    """Design a reward for `task`: rounds of LLM candidates, checked, reviewed, trained and analysed, the best
    re-trained over seeds against the baselines and exported (`export/reward.py` in the run folder).

    `llm`: which LLM answers (default `LLMSettings()`: OpenAI's gpt-4o-mini, the key from OPENAI_API_KEY).
    `loop`: every setting of the run (`autoreward.config.LoopConfig`); without it, one is made from `rounds`,
    `candidates` and any other LoopConfig field passed by name (`steps=`, `envs=`, `eval_episodes=` and
    `algo=` set the budget). `resume`: a run folder to continue instead (its own settings kept, except the
    LLMSettings fields in `changed_llm`: a new `base_url`, say). `approve_score`: who decides on a task score
    proposed for a task in words (default: accepted as written when `accept_score=True`). `on_open` is told
    the `Run` as soon as its folder is made or opened, before any LLM call. `runner`: where the workers
    run, in what jail, and who hears of the run's progress (default: `Runner.connect` on the executor the
    run's settings name, silent). Returns the finished `Run`.

    The task's own mistakes (a broken fitness, extras that fail), a missing API key or transcript and
    settings that cannot run together are each one sentence before a run folder is made."""
    from autoreward.contract.checker import check_task
    from autoreward.loop.design_run import open_design, run_design
    from autoreward.review.html_report import write_html_report
    from autoreward.review.run_export import export_run

    if resume is not None:
        if runner is None:  # the executor the run's own settings name
            own = RunStore.open(Path(resume)).config().loop
            runner = Runner.connect(own.executor, own.ray_address)
        session = open_design(Path(runs_dir), resume=Path(resume), prompts_dir=prompts_dir, changed=changed_llm)
    else:
        if task is None:
            raise AutorewardError("name a task to design a reward for (autoreward.load_task), or a run to resume")
        llm = llm or LLMSettings()
        if loop is None:
            loop = loop_config(task, llm, rounds=rounds, candidates=candidates, **settings)
        elif settings:
            raise TypeError(f"give the run's settings in `loop` or by name, not both: {', '.join(settings)}")
        if loop.problem() is not None:
            raise AutorewardError(loop.problem())
        for form in loop.forms:
            if forms.task_problem(form, task) is not None:
                raise AutorewardError(forms.task_problem(form, task))
        if loop.mpc_prescreen:
            from autoreward.loop.preview import prescreen_problem

            if prescreen_problem(task) is not None:
                raise AutorewardError(prescreen_problem(task))
        runner = runner or Runner.connect(loop.executor, loop.ray_address)
        check_task(task, jail=runner.jail)  # a task file's own mistake, before any LLM call
        session = open_design(Path(runs_dir), task, loop, llm, prompts_dir=prompts_dir)
    run = Run(session.store)
    if on_open is not None:
        on_open(run)
    run_design(
        session,
        runner,
        approve_score,
        page_url or DEFAULT_PAGE_URL,
        preference_timeout,
    )
    export_run(session.store)
    write_html_report(session.store)
    return run


@dataclass(frozen=True)
class ChatResult:
    """An interactive design session as it ended: its folder, every turn (`autoreward.records.ChatTurn`), and the
    candidate trained when the person said `train` (None after `quit`)."""

    folder: Path  # runs/<task>__chat__s<seed>__<time>/: chat.json, transcript.md, each turn's candidate and preview
    turns: tuple
    trained: Any = None  # autoreward.records.Candidate, with its training

    @property
    def score(self) -> float | None:
        """The trained reward's task score on its held-out episodes (None before a training, or without a score)."""
        return self.trained.fitness if self.trained is not None else None


def chat(
    task: Task | None = None,
    person: Callable[[Any, Any], str] | None = None,
    llm: LLMSettings | None = None,
    runs_dir: Path | str = DEFAULT_RUNS_DIR,
    resume: Path | str | None = None,
    loop: LoopConfig | None = None,
    runner: Runner | None = None,
    prompts_dir: Path | None = None,
    changed_llm: dict[str, Any] | None = None,
    on_open: Callable[["Run"], None] | None = None,
    **settings,
) -> ChatResult:
    """Design a reward with a person, turn by turn: the designer writes one, a preview plays it (one episode planned
    by model-predictive control, `preview`), and `person(turn, preview)` says what to change in words, `"train"`
    (the latest reward that passed its check is trained, as a run's candidates are) or `"quit"`.

    `turn` is the `autoreward.records.ChatTurn` just played, `preview` its `PreviewResult` (None when it has none:
    `turn.problem` says why). Each correction goes to the designer with the conversation so far, and its revision
    is checked, reviewed and repaired as any candidate is. Every turn is kept in the run folder as it happens:
    `resume` continues a session where it stopped, asking the person only what they had not answered, and the
    folder's `transcript.md` replays its LLM (`LLMSettings(backend="replay", transcript=...)`). `loop` and
    `settings` as for `design` (the budget is the final training's; `critic`, `repair_attempts`, `seed`, `videos`
    apply); the planner is the task's (`task.planner`)."""
    from autoreward.contract.checker import check_task
    from autoreward.loop.chat import ChatSession
    from autoreward.loop.design_run import open_design

    if person is None:
        raise AutorewardError("a chat needs someone to answer after each turn: pass person=(turn, preview) -> words")
    if resume is not None:
        if runner is None:
            own = RunStore.open(Path(resume)).config().loop
            runner = Runner.connect(own.executor, own.ray_address)
        session = open_design(Path(runs_dir), resume=Path(resume), prompts_dir=prompts_dir, changed=changed_llm)
    else:
        if task is None:
            raise AutorewardError("name a task to design a reward for with a person, or a session to resume")
        problem = preview_problem_of(task)
        if problem is not None:
            raise AutorewardError(problem)
        llm = llm or LLMSettings()
        if loop is None:
            loop = loop_config(task, llm, rounds=1, candidates=1, **settings)
        elif settings:
            raise TypeError(f"give the session's settings in `loop` or by name, not both: {', '.join(settings)}")
        runner = runner or Runner.connect(loop.executor, loop.ray_address)
        check_task(task, jail=runner.jail)  # a task file's own mistake, before any LLM call
        session = open_design(Path(runs_dir), task, loop, llm, prompts_dir=prompts_dir, kind="chat")
    run = Run(session.store)
    if on_open is not None:
        on_open(run)
    chat_session = ChatSession(session, runner, person)
    record = chat_session.run()
    trained = session.store.load_candidate(record.trained) if record.trained else None
    return ChatResult(session.store.path, record.turns, trained)


def preview_problem_of(task: Task) -> str | None:
    """Why `task` cannot be previewed (and so not designed in a chat), in one sentence; None when it can."""
    from autoreward.loop.preview import preview_problem

    return task.planner.problem() or preview_problem(task)


def examine_score(text: str, task: Task, runner: Runner | None = None) -> ScoreProposal:
    """A task score as a person wrote or edited it (task-file TOML: `[fitness]` and `success_threshold`),
    checked on real states in a jailed worker as a proposed one is: its `problem` says why it cannot be used,
    else its `random_score` and `still_score` say what an episode of random actions and one of standing still
    score. What an `approve_score` callable may return after an edit."""
    from autoreward.contract.checker import check_proposed_score
    from autoreward.loop.task_score import examine

    jail = (runner or Runner.connect()).jail
    return examine(text, task, lambda edited: check_proposed_score(edited, jail=jail))


def loop_config(task: Task, llm: LLMSettings, **settings) -> LoopConfig:
    """A run's settings from LoopConfig's fields by name; `steps`, `envs`, `eval_episodes` and `algo` set the
    budget (checked); the models are the LLM settings' alone. The rules for what is not given are the command line's
    too: one worker per CPU, confirmation seeds only where the task score picks, the analyzer shown frames
    where a model that takes images is named."""
    budget = budget_with(
        settings.pop("budget", task.budget),
        settings.pop("algo", None),
        settings.pop("steps", None),
        settings.pop("envs", None),
        settings.pop("eval_episodes", None),
    )
    if isinstance(settings.get("forms"), str):  # "reward,progress", as on the command line
        settings["forms"] = tuple(name.strip() for name in settings["forms"].split(",") if name.strip())
    elif "forms" in settings:
        settings["forms"] = tuple(settings["forms"])
    known = set(LoopConfig.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if {"model", "vlm_model"} & set(unknown):
        raise TypeError("the models are the LLM's settings: pass llm=autoreward.LLMSettings(model=..., vlm_model=...)")
    if unknown:
        raise TypeError(f"not a setting of a design run: {', '.join(unknown)} (see autoreward.config.LoopConfig)")
    if "device" in settings:
        settings["device"] = checked_device(settings["device"], settings.get("executor"))
    settings.setdefault("workers", os.cpu_count() or 1)
    # Confirmation picks by the task score over more seeds: only where the task score picks.
    settings.setdefault(
        "confirm_seeds", DEFAULT_CONFIRM_SEEDS if settings.get("feedback", "fitness") == "fitness" else 0
    )
    # As on the command line: the analyzer watches where a model that takes images is named.
    watching = bool(llm.vlm_model) or settings.get("feedback") == "vlm"
    settings.setdefault("analyzer_frames", watching and settings.get("analyzer", True) and settings.get("videos", True))
    return LoopConfig(budget=budget, **settings)


# --- the rules every entry point shares -------------------------------------------


def budget_with(base: Budget, algo=None, steps=None, envs=None, eval_episodes=None) -> Budget:
    """`base` with the training values that were given, each checked (one sentence per mistake)."""
    if algo is not None and algo not in ("ppo", "sac"):
        raise AutorewardError(f"--algo must be 'ppo' or 'sac', got {algo!r}")
    for name, value in (("--steps", steps), ("--envs", envs), ("--eval-episodes", eval_episodes)):
        if value is not None and value < 1:
            raise AutorewardError(f"{name} must be at least 1, got {value}")
    changes = {"algo": algo, "steps": steps, "n_envs": envs, "eval_episodes": eval_episodes}
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


def checked_device(device: str, executor: str | None = None) -> str:
    """`device` when it names where policies can learn (cpu, cuda, cuda:N); one sentence when it cannot."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise AutorewardError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    if executor == "ray" and device.startswith("cuda:"):
        raise AutorewardError(
            f"--device {device} names a GPU of one machine; on a Ray cluster give --device cuda, "
            "and Ray gives each training a free GPU of some node"
        )
    return device
