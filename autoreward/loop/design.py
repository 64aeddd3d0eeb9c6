"""Designing one candidate: the designer writes a program, the checker tests it, the critic reviews it.

A candidate is one conversation with the designer. Its first reply is taken
apart (`extract_program`), checked in a worker (`check_program`) and, when a
critic is on, reviewed. A program that fails any of these goes back to the
designer in the same conversation with the precise problem, up to
`repair_attempts` times. Every attempt is kept in the candidate's record, so
the run folder shows how each program came to be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from autoreward.config import CheckOptions, LoopConfig, RewardForm, Task
from autoreward.contract.checker import check_program
from autoreward.contract.forms import with_signature
from autoreward.contract.reward_program import ENTRY_POINTS
from autoreward.errors import ExtractionError
from autoreward.llm.backends import LLM, Message, ask
from autoreward.llm.extract import explanation, extract_program
from autoreward.llm.prompts import Prompts
from autoreward.loop.critic import Critic
from autoreward.records import Attempt, Candidate, CheckResult

CheckFunction = Callable[[Task, str, Path], CheckResult]
# The designer's system prompt for each reward form.
SYSTEM_PROMPTS = {
    "reward": "designer_system",
    "progress": "designer_system_progress",
    "latent": "designer_system_latent",
}


@dataclass(frozen=True)
class DesignBrief:
    """What the designer is told in a round: the task, the state, and what earlier rounds learned."""

    task_description: str
    state_description: str
    best_program: str | None = None
    best_round: int | None = None
    feedback: str | None = None
    lessons: tuple[str, ...] = ()
    training_description: str = ""  # how the policy will be trained (loop.training.describe_training)
    best_form: RewardForm = "reward"  # the best program's form


class CandidateDesigner:
    """Turns a brief into a checked (and reviewed) candidate, repairing it when it fails."""

    def __init__(
        self, llm: LLM, prompts: Prompts, task: Task, config: LoopConfig, check: CheckFunction = check_program
    ):
        self.llm = llm
        self.prompts = prompts
        self.task = task
        self.config = config
        self.check = check
        self.critic = Critic(llm, prompts, config)

    @classmethod
    def in_jail(cls, llm: LLM, prompts: Prompts, task: Task, config: LoopConfig, jail) -> "CandidateDesigner":
        """A run's designer: its programs checked in `jail` at the run's training batch size (the size its
        trainings call the reward at), as every candidate of a design run or a chat is."""
        options = CheckOptions(training_batch_size=config.budget.n_envs)
        check = lambda task, code, folder: check_program(task, code, folder, options, jail=jail)  # noqa: E731
        return cls(llm, prompts, task, config, check)

    def design(
        self,
        brief: DesignBrief,
        round_number: int,
        index: int,
        folder: Path,
        request: str | None = None,
        form: RewardForm = "reward",
    ) -> Candidate:
        """Design candidate `index` of round `round_number`; checks are run in workers under `folder`.

        `request`: the designer's first user message in place of the round's (`designer_request`), e.g. a
        correction in an interactive session (`loop/chat.py`); the system prompt and the repairs are the same.
        `form`: what the program is (`contract/forms.py`): its own system prompt, and a reply is taken only
        for that form's function."""
        candidate_id = f"r{round_number}c{index}"
        tag = f"r{round_number}/c{index}"
        messages = self.first_messages(brief, form)
        if request is not None:
            messages[-1] = Message("user", request)
        reply = self._ask(messages, f"{tag}/designer", sample=index)
        attempts: list[Attempt] = []
        for number in range(self.config.repair_attempts + 1):
            attempt = self._attempt(number, reply, brief, folder / f"check_{number}", tag, form)
            attempts.append(attempt)
            if _accepted(attempt):
                return Candidate(candidate_id, round_number, index, "ready", tuple(attempts), form=form)
            if number == self.config.repair_attempts:
                break
            messages += [Message("assistant", reply), Message("user", self._repair_request(attempt, form))]
            reply = self._ask(messages, f"{tag}/repair{number + 1}", sample=index)
        last = attempts[-1]
        rejected = last.critique is not None and last.critique.verdict == "reject"
        return Candidate(
            candidate_id,
            round_number,
            index,
            "rejected" if rejected else "failed_check",
            tuple(attempts),
            message=_problem_line(last),
            form=form,
        )

    def first_messages(self, brief: DesignBrief, form: RewardForm = "reward") -> list[Message]:
        """The designer's system prompt for `form` (the State, how it is trained) and its request (the task, the
        last round)."""
        system = self.prompts.render(
            SYSTEM_PROMPTS[form],
            state_description=with_signature(brief.state_description, form),
            training=brief.training_description,
        )
        request = self.prompts.render(
            "designer_request",
            task_description=brief.task_description,
            best_program=brief.best_program,
            best_round=brief.best_round,
            feedback=brief.feedback,
            lessons=list(brief.lessons),
            form=form,
            best_form=brief.best_form,
        )
        return [Message("system", system), Message("user", request)]

    def _attempt(
        self, number: int, reply: str, brief: DesignBrief, folder: Path, tag: str, form: RewardForm = "reward"
    ) -> Attempt:
        said = explanation(reply)
        try:
            code = extract_program(reply, form)
        except ExtractionError as error:
            return Attempt(number, None, problem=str(error), explanation=said)
        check = self.check(self.task, code, folder)
        if not check.ok or not self.config.critic:
            return Attempt(number, code, check=check, explanation=said)
        critique = self.critic.review(
            brief.task_description, brief.state_description, code, f"{tag}/critic{number}", check
        )
        return Attempt(number, code, check=check, critique=critique, explanation=said)

    def _repair_request(self, attempt: Attempt, form: RewardForm = "reward") -> str:
        entry = ENTRY_POINTS[form]
        if attempt.code is None:
            return self.prompts.render("repair", category="no_code", message=attempt.problem, program=None, entry=entry)
        if attempt.check is not None and not attempt.check.ok:
            return self.prompts.render(
                "repair",
                category=attempt.check.category.value,
                message=attempt.check.message,
                program=attempt.code,
                entry=entry,
            )
        reasons = "\n".join(f"- {r}" for r in attempt.critique.reasons) or "- (no reason given)"
        return self.prompts.render("repair", category="critic", message=reasons, program=attempt.code, entry=entry)

    def _ask(self, messages: list[Message], tag: str, sample: int = 0, temperature: float | None = None) -> str:
        return ask(self.llm, self.config, messages, tag, sample=sample, temperature=temperature)


def _accepted(attempt: Attempt) -> bool:
    if attempt.check is None or not attempt.check.ok:
        return False
    return attempt.critique is None or attempt.critique.verdict == "accept"


def _problem_line(attempt: Attempt) -> str:
    if attempt.code is None:
        return f"no program in the reply: {attempt.problem}"
    if attempt.check is not None and not attempt.check.ok:
        return f"check failed ({attempt.check.category.value}): {attempt.check.message}"
    return "the critic rejected it: " + "; ".join(attempt.critique.reasons)
