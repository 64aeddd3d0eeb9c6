"""The judge: an LLM names the best and worst of a round's policies from their trajectory summaries.

Used where there is no trusted task score to rank by (`--feedback llm`, and
tasks given only as a sentence). It reads numbers about what each policy did,
never the task score.
"""

from __future__ import annotations

import re

from autoreward.config import LoopConfig, Task
from autoreward.llm.backends import LLM, Message, ask
from autoreward.llm.prompts import Prompts
from autoreward.records import Candidate
from autoreward.sim.trajectory import summary_text


def judge(
    llm: LLM, prompts: Prompts, task: Task, config: LoopConfig, candidates: list[Candidate], tag: str
) -> tuple[Candidate, Candidate | None, str]:
    """An LLM names the best and the worst policy from their trajectory summaries, with its reasons.

    The worst is None when the reply names none (or names the best). A reply
    that names no best picks the first candidate, and says so.
    """
    if len(candidates) == 1:
        return candidates[0], None, "the only trained candidate"
    shown = [
        {
            "id": c.id,
            "summary": summary_text(c.training.evaluation.summary) if c.training.evaluation.summary else "(none)",
        }
        for c in candidates
    ]
    message = prompts.render("judge", task_description=task.description, candidates=shown)
    reply = ask(llm, config, [Message("user", message)], tag, temperature=0.0)
    by_id = {c.id: c for c in candidates}
    best, worst = (_named(label, reply, by_id) for label in ("BEST", "WORST"))
    if best is None:
        return candidates[0], None, f"the judge named no candidate ({reply.strip()[:120]!r}); kept {candidates[0].id}"
    reasons = "; ".join(line.strip()[2:] for line in reply.splitlines() if line.strip().startswith("- "))
    return best, worst if worst is not best else None, reasons


def _named(label: str, reply: str, by_id: dict[str, Candidate]) -> Candidate | None:
    match = re.search(label + r"\s*:\s*\**\s*([A-Za-z0-9_]+)", reply)
    return by_id.get(match.group(1)) if match else None
