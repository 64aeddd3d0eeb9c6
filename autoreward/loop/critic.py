"""The critic: an LLM reviews a checked program against the task before any training.

It advises; it does not score. A rejected candidate goes back to the designer
with the critic's reasons, like a failed check; a reply with no verdict accepts.
"""

from __future__ import annotations

import re

from autoreward.config import LoopConfig
from autoreward.contract.forms import with_signature
from autoreward.contract.reward_program import program_form
from autoreward.llm.backends import LLM, Message, ask
from autoreward.llm.prompts import Prompts
from autoreward.records import CheckResult, Critique

VERDICT = re.compile(r"VERDICT\s*:\s*\**\s*(ACCEPT|REJECT)", re.IGNORECASE)


class Critic:
    """Reviews one checked program: the task, the State it reads, the code; a verdict and reasons back."""

    def __init__(self, llm: LLM, prompts: Prompts, config: LoopConfig):
        self.llm = llm
        self.prompts = prompts
        self.config = config

    def review(
        self, task_description: str, state_description: str, program: str, tag: str, check: CheckResult | None = None
    ) -> Critique:
        """`check`: the program's passed check, whose measurements on real states the critic is shown."""
        form = program_form(program)
        prompt = self.prompts.render(
            "critic",
            task_description=task_description,
            state_description=with_signature(state_description, form),
            program=program,
            measured=check.component_stats if check is not None else {},
            total_is_sum=check.total_is_sum if check is not None and form == "reward" else None,
            form=form,
        )
        reply = ask(self.llm, self.config, [Message("user", prompt)], tag, temperature=0.0)
        return parse_critique(reply)


def parse_critique(reply: str) -> Critique:
    """The critic's verdict and reasons. A reply without a verdict accepts: the critic only advises."""
    reasons = tuple(line.strip()[2:].strip() for line in reply.splitlines() if line.strip().startswith("- "))
    match = VERDICT.search(reply)
    if match is None:
        return Critique("accept", ("the critic's reply had no VERDICT line, so the candidate was not held back",))
    return Critique("reject" if match.group(1).upper() == "REJECT" else "accept", reasons)
