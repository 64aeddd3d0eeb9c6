"""A design run from its folder to its final result: what `autoreward run` and `autoreward.design` both do.

`open_design` makes the run folder (or opens one to resume) with its LLMs
connected: a missing key or transcript is one sentence before a folder is
made. `run_design` settles a task score where the task was given in words
and asks for one, then drives the rounds, the final evaluation and the
baselines (`DesignLoop`). The caller says how it reports progress and who
approves a proposed task score; nothing here prints or reads a terminal.
The outputs (the exported module, the reports) are written by the caller
(`autoreward.api`), a level above.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from autoreward.config import DEFAULT_PAGE_URL, LLMSettings, LoopConfig, Task
from autoreward.errors import AutorewardError
from autoreward.llm.backends import LLM, CachedLLM, connect
from autoreward.llm.prompts import Prompts
from autoreward.llm.recorded import RecordedLLM
from autoreward.loop.driver import DesignLoop
from autoreward.loop.run_store import RunStore, start_run
from autoreward.loop.runner import Runner
from autoreward.loop.task_score import Approval, accept_as_written, settle_task_score
from autoreward.records import FinalResult, ScoreProposal
from autoreward.sandbox.jail import Jail


@dataclass(frozen=True)
class DesignSession:
    """An open design run: its folder, the LLM the designer asks and the one a watching judge asks."""

    store: RunStore
    llm: LLM
    judge_llm: LLM
    prompts: Prompts


def open_design(
    runs_dir: Path,
    task: Task | None = None,
    loop: LoopConfig | None = None,
    settings: LLMSettings | None = None,
    resume: Path | None = None,
    prompts_dir: Path | None = None,
    changed: dict[str, Any] | None = None,
    kind: str = "design",
) -> DesignSession:
    """A new run of `task` under `loop` and `settings` in `runs_dir`, or the run at `resume`.

    A resumed run keeps its own LLM settings, except those in `changed` (a new --base-url, say)."""
    prompts = Prompts(prompts_dir)  # a bad template folder fails before any call is paid for
    if resume is not None:
        store = RunStore.open(resume)
        settings = replace(store.config().llm, **(changed or {}))
    elif task is None or loop is None or settings is None:
        raise ValueError("a new design run needs its task, loop settings and LLM settings")
    # A missing key or transcript fails here, before a run folder is made.
    backend = None if settings.backend == "manual" else connect(settings, None)
    if resume is None:
        store = start_run(Path(runs_dir), task, loop, settings, kind)
    backend = backend or connect(settings, store.path / "manual")
    llm = RecordedLLM(CachedLLM(backend, store.path / "llm_cache"), store)
    return DesignSession(store, llm, _judge_llm(settings, store, llm), prompts)


def _judge_llm(settings: LLMSettings, store: RunStore, llm: LLM) -> LLM:
    """The LLM a watching judge (and a watching analyzer) asks: the vision model (default: the designer's) at
    its server (default: the designer's), with the run's cache and record. A replay or a person answers both."""
    if settings.backend != "openai":
        return llm
    vision = replace(
        settings, base_url=settings.vlm_base_url or settings.base_url, model=settings.vlm_model or settings.model
    )
    return RecordedLLM(CachedLLM(connect(vision, None), store.path / "llm_cache"), store)


def run_design(
    session: DesignSession,
    runner: Runner,
    approve_score: Approval | None = None,
    page_url: str = DEFAULT_PAGE_URL,
    preference_timeout: float | None = None,
    note: Callable[[str], None] | None = None,
) -> FinalResult:
    """Drive the run to its end; returns the final result.

    `approve_score` decides on a task score proposed for a task in words (default: accepted as written when
    the run says `accept_score`, else an error that names the way). `runner`: the run's jail, executor and
    progress (`Runner.connect(config.loop.executor, ...)` for the executor the run's settings name)."""
    store = session.store
    config = store.config()
    if config.task.fitness is None and config.loop.score == "proposed":
        note = note or runner.progress.note
        if settle_score(session, runner.jail, approve_score, note).adopted:
            note(f"the task with its score: {store.task_file_path()} (autoreward run that file later)")
    return DesignLoop(
        store,
        session.llm,
        session.prompts,
        store.path.parent,
        runner,
        page_url=page_url,
        preference_timeout=preference_timeout,
        judge_llm=session.judge_llm,
    ).run()


def settle_score(
    session: DesignSession, jail: Jail, approve: Approval | None, note: Callable[[str], None]
) -> ScoreProposal:
    """Before round 1 of a task in words: an LLM's task score, checked, and approved by `approve` (a decision
    already in the run folder is read, not asked again)."""
    from autoreward.contract.checker import check_proposed_score
    from autoreward.task.describe import describe_task

    config = session.store.config()
    if approve is None:
        if not config.loop.accept_score:
            raise AutorewardError(
                "a proposed task score needs a decision: accept it as written (accept_score) or pass who approves it"
            )
        approve = accept_as_written
    check = lambda task: check_proposed_score(task, jail=jail)  # noqa: E731
    return settle_task_score(
        session.store, session.llm, session.prompts, describe_task(config.task), check, approve, note
    )
