"""A task given only in words gets a score: an LLM proposes one, it is checked, and a person accepts it.

Before round 1 of a run whose task is a sentence (with `score = "proposed"`),
`propose_task_score` asks the LLM for a task score in the task file's own
form (a `[fitness]` table: `step`, `reduce`, `description`, `higher_is_better`,
and an optional `success_threshold`), from the sentence and the State
description. It is checked as a task file's fitness is (`check_proposed_score`:
it runs on real states in a worker, is finite, and scores an episode of random
actions differently from one of standing still); a reply that cannot be used
gets one sentence and a repair request, as a designer's does.

An `Approval` then decides: a person at the terminal (the command line's),
or `accept_as_written` (`--accept-score`: the LLM's measure, trusted). Once
adopted the score is the run's trusted fitness: `settle_task_score` writes
the decision to `score_proposal.json`, the task as a file the person can keep
(`task.toml`, which `autoreward run` and `autoreward tasks --tasks-dir` read),
and the run's configuration with it. The designer never sees it, as with any
task file's fitness. A resumed run reads the decision and asks nothing again.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace
from typing import Callable

from autoreward.config import LoopConfig, PlannerSettings, Task
from autoreward.errors import TaskError
from autoreward.llm.backends import LLM, Message, ask
from autoreward.llm.prompts import Prompts
from autoreward.loop.run_store import RunStore
from autoreward.records import ScoreProposal, now_iso
from autoreward.task.files import parse_task

# Checks a task with a proposed fitness: (its score on a random episode, on a still one), or TaskError.
ScoreCheck = Callable[[Task], tuple[float, float]]
# Decides on a checked proposal: the same proposal accepted, edited (checked again) or rejected.
Approval = Callable[[ScoreProposal], ScoreProposal]

SCORE_FIELDS = ("success_threshold", "fitness")
ACCEPTED_AS_WRITTEN = "--accept-score (the LLM's measure, trusted as written)"
TOML_BLOCK = re.compile(r"```(?:toml)?[ \t]*\n(.*?)```", re.DOTALL)


def propose_task_score(
    llm: LLM, prompts: Prompts, task: Task, config: LoopConfig, state_description: str, check: ScoreCheck
) -> ScoreProposal:
    """The LLM's task score for `task`, checked; repaired up to `config.repair_attempts` times.

    The result's decision is "unusable" (with its problem) when no reply gave a score that passed its check,
    else "proposed", waiting for an `Approval`.
    """
    request = prompts.render(
        "task_score", env_id=task.env_id, task_description=task.description, state_description=state_description
    )
    messages = [Message("user", request)]
    proposal = None
    for attempt in range(config.repair_attempts + 1):
        tag = "score/proposal" if attempt == 0 else f"score/repair{attempt}"
        reply = ask(llm, config, messages, tag, temperature=0.0)
        proposal = examine(score_text(reply), task, check)
        if proposal.problem is not None and not TOML_BLOCK.search(reply):
            proposal = replace(proposal, problem=f"the reply has no ```toml block ({proposal.problem})")
        if proposal.problem is None:
            return proposal
        messages += [
            Message("assistant", reply),
            Message("user", prompts.render("task_score_repair", problem=proposal.problem)),
        ]
    return proposal


def score_text(reply: str) -> str:
    """The TOML of a reply: its first ```toml (or plain ```) block, else the whole reply."""
    match = TOML_BLOCK.search(reply)
    return (match.group(1) if match else reply).strip() + "\n"


def examine(text: str, task: Task, check: ScoreCheck) -> ScoreProposal:
    """`text` (a proposal, or a person's edit of one) read as a score for `task` and checked on real states."""
    try:
        adopted = scored_task(task, text)
        random_score, still_score = check(adopted)
    except TaskError as error:
        return ScoreProposal(text=text, fitness=None, decision="unusable", problem=str(error), at=now_iso())
    return ScoreProposal(
        text=text,
        fitness=adopted.fitness,
        success_threshold=adopted.success_threshold,
        random_score=random_score,
        still_score=still_score,
        decision="proposed",
        at=now_iso(),
    )


def scored_task(task: Task, text: str) -> Task:
    """`task` with the score in `text`, validated as a task file's `[fitness]` is; TaskError in one sentence."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TaskError(f"the proposed score is not valid TOML ({error}); write it as one ```toml block") from None
    unknown = [name for name in table if name not in SCORE_FIELDS]
    if unknown:
        raise TaskError(
            f"the proposed score has {', '.join(map(repr, unknown))}, and only 'success_threshold' and the "
            "[fitness] table belong in it"
        )
    if "fitness" not in table:
        raise TaskError("the proposed score has no [fitness] table with 'step', 'reduce' and 'description'")
    parsed = parse_task(task_file_text(replace(task, fitness=None, success_threshold=None), text), "the proposed score")
    return replace(task, fitness=parsed.fitness, success_threshold=parsed.success_threshold)


def accept_as_written(proposal: ScoreProposal) -> ScoreProposal:
    """The approval of `--accept-score`: the LLM's measure is trusted as it was written."""
    return proposal.decided("accepted", ACCEPTED_AS_WRITTEN)


def settle_task_score(
    store: RunStore,
    llm: LLM,
    prompts: Prompts,
    state_description: str,
    check: ScoreCheck,
    approve: Approval,
    note: Callable[[str], None] = print,
) -> ScoreProposal:
    """Propose, check and decide on a score for the run's sentence task, once; adopt it when accepted.

    A decision already in the run folder is read, not asked again. An adopted score is written as the run's
    `task.toml` and becomes the task of its configuration, so everything after (pre-screening, the final
    table's baselines and normalized score, the export) treats it as a task file's fitness.
    """
    recorded = store.load_score_proposal()
    if recorded is not None:
        return recorded
    config = store.config()
    note("asking the LLM for a task score (it is never shown to the designer)")
    proposal = propose_task_score(llm, prompts, config.task, config.loop, state_description, check)
    if proposal.decision == "unusable":
        note(f"no usable task score was proposed ({proposal.problem}); the rounds are judged instead")
    else:
        proposal = approve(proposal)
    store.save_score_proposal(proposal)
    if proposal.adopted:
        task = replace(config.task, fitness=proposal.fitness, success_threshold=proposal.success_threshold)
        store.write_task_file(task_file_text(replace(task, budget=config.loop.budget), comment=provenance(proposal)))
        store.adopt_task(replace(task, source=str(store.task_file_path())))
        note(f"task score {proposal.decision} by {proposal.decided_by}: {proposal.fitness.description}")
    else:
        store.log_event("task score not adopted", decision=proposal.decision)
    return proposal


def provenance(proposal: ScoreProposal) -> str:
    return f"The task score was proposed by an LLM and {proposal.decision} by {proposal.decided_by} on {proposal.at}."


def task_file_text(task: Task, score: str | None = None, comment: str | None = None) -> str:
    """`task` as a task file (`autoreward run FILE` reads it); `score`, TOML of a proposed score, in its place."""
    lines = [f"# {comment}"] if comment else []
    lines += [f"id = {_toml(task.id)}", f"env = {_toml(task.env_id)}", f"description = {_toml(task.description)}"]
    if task.max_episode_steps is not None:
        lines.append(f"max_episode_steps = {task.max_episode_steps}")
    if score is not None:
        lines.append(score.strip())  # top-level success_threshold first, then its [fitness] table
    else:
        if task.success_threshold is not None:
            lines.append(f"success_threshold = {task.success_threshold!r}")
        if task.fitness is not None:
            lines += ["", "[fitness]"] + [f"{k} = {_toml(v)}" for k, v in _fields(task.fitness).items()]
    for name, table in (("env_kwargs", task.env_kwargs), ("extras", task.extras)):
        if table:
            lines += ["", f"[{name}]"] + [f"{k} = {_toml(v)}" for k, v in table.items()]
    if task.budget is not None:
        lines += ["", "[budget]"] + [f"{k} = {_toml(v)}" for k, v in _fields(task.budget).items()]
    if task.planner != PlannerSettings():
        lines += ["", "[preview]"] + [f"{k} = {_toml(v)}" for k, v in _fields(task.planner).items()]
    return "\n".join(lines) + "\n"


def _fields(record) -> dict:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def _toml(value) -> str:
    """A TOML value: JSON's string escapes and numbers are TOML's; booleans are lowercase in both."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)
