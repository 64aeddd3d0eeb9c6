"""Taking a reward program out of an LLM's reply."""

from __future__ import annotations

import ast
import re

from autoreward.contract.reward_program import ENTRY_POINTS
from autoreward.errors import ExtractionError

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def _defines(code: str, entry: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    return any(isinstance(n, ast.FunctionDef) and n.name == entry for n in tree.body)


def extract_program(reply: str, form: str = "reward") -> str:
    """The last code block that parses and defines `compute_reward` (or the whole reply, if it is such code);
    for another form (`config.RewardForm`), its function (`compute_progress`, `compute_latent`)."""
    entry = ENTRY_POINTS[form]
    blocks = [(language.lower(), code.strip("\n")) for language, code in FENCE.findall(reply)]
    usable = [
        code for language, code in blocks if language in ("", "python", "py", "python3") and _defines(code, entry)
    ]
    if usable:
        return usable[-1] + "\n"
    if not blocks and _defines(reply, entry):
        return reply.strip("\n") + "\n"
    python_blocks = [code for language, code in blocks if language in ("", "python", "py", "python3")]
    mentions = [code for code in python_blocks if f"def {entry}" in code]
    if mentions:
        try:
            ast.parse(mentions[-1])
        except SyntaxError as error:
            raise ExtractionError(
                f"the python block defining {entry} does not parse: {error.msg} at line {error.lineno}. "
                "Give the whole function in one complete ```python block."
            ) from None
    others = sorted({language for language, _ in blocks if language not in ("", "python", "py", "python3")})
    if others:
        raise ExtractionError(
            f"the reply has code in {', '.join(others)}, not Python; write `def {entry}(state, action, "
            "next_state)` in Python, in one ```python block."
        )
    raise ExtractionError(
        f"the reply has no python code block defining `{entry}(state, action, next_state)`; "
        "give the function in one ```python block."
    )


def explanation(reply: str, limit: int = 800) -> str:
    """The reply's prose without its code blocks, for the reward report."""
    text = " ".join(FENCE.sub(" ", reply).split())
    return text if len(text) <= limit else text[:limit] + "..."
