"""The judge: an LLM names the best and worst of a round's policies, from what each did.

Used where there is no trusted task score to rank by (`--feedback llm` and
`--feedback vlm`, and tasks given only as a sentence without an accepted
score). It reads each policy's trajectory summary, never the task score; a
judge that watches (`frames` given) is also sent a few frames of each
policy's video, as image content parts: `llm` is then the vision model's
(`loop.design_run` connects it), and the model is always `llm`'s own. A
reply that names no candidate, or one that was not shown, gets one sentence
and a repair request, as a designer's reply does.
"""

from __future__ import annotations

import re
from typing import Callable

from autoreward.config import LoopConfig, Task
from autoreward.errors import VideoError
from autoreward.llm.backends import LLM, Image, Message, ask
from autoreward.llm.prompts import Prompts
from autoreward.records import Candidate
from autoreward.sim.trajectory import summary_text

# The frames a watching judge is shown of a candidate's video ([] when it has none).
FramesOf = Callable[[Candidate], list[Image]]


def judge(
    llm: LLM,
    prompts: Prompts,
    task: Task,
    config: LoopConfig,
    candidates: list[Candidate],
    tag: str,
    frames: FramesOf | None = None,
) -> tuple[Candidate, Candidate | None, str]:
    """An LLM names the best and the worst policy, with its reasons; with `frames`, having seen their videos.

    The worst is None when the reply names none (or names the best). A reply that names no best (or an
    unknown one) is asked to repair itself, up to `config.repair_attempts` times; one still without a best
    picks the first candidate, and says so.
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
    images = tuple(image for c in candidates for image in _frames(frames, c)) if frames is not None else ()
    message = prompts.render("judge", task_description=task.description, candidates=shown, watched=bool(images))
    messages = [Message("user", message, images)]
    by_id = {c.id: c for c in candidates}
    for attempt in range(config.repair_attempts + 1):
        reply = ask(llm, config, messages, tag if attempt == 0 else f"{tag}/repair{attempt}", temperature=0.0)
        best, worst = (_named(label, reply, by_id) for label in ("BEST", "WORST"))
        if best is not None:
            reasons = "; ".join(line.strip()[2:] for line in reply.splitlines() if line.strip().startswith("- "))
            return best, worst if worst is not best else None, reasons
        messages += [Message("assistant", reply), Message("user", _repair(reply, list(by_id)))]
    return candidates[0], None, f"the judge named no candidate ({reply.strip()[:120]!r}); kept {candidates[0].id}"


def _frames(frames: FramesOf, candidate: Candidate) -> list[Image]:
    try:
        return frames(candidate)
    except VideoError:
        return []  # a policy without a readable video is judged by its summary alone


def _named(label: str, reply: str, by_id: dict[str, Candidate]) -> Candidate | None:
    match = re.search(label + r"\s*:\s*\**\s*([A-Za-z0-9_]+)", reply)
    return by_id.get(match.group(1)) if match else None


def _repair(reply: str, names: list[str]) -> str:
    match = re.search(r"BEST\s*:\s*\**\s*([A-Za-z0-9_]+)", reply)
    said = (
        f"names {match.group(1)!r} as BEST, which is not one of the policies" if match else "has no line `BEST: <name>`"
    )
    return (
        f"Your reply {said}. Answer again with one line `BEST: <name>` and one line `WORST: <name>`, each one of "
        f'{", ".join(names)}, then your reasons, one per line, each starting with "- ".'
    )
