"""Prompts are data: Jinja2 templates in `prompts/`, one per message kind, rendered here and nowhere else.

A user can point to their own folder of templates; a template there replaces
the shipped one of the same name. Undefined variables are errors, so a
template and its caller cannot silently drift apart.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from autoreward.errors import PromptError
from autoreward.resources import data_dir

TEMPLATES = (
    "designer_system",
    "designer_system_progress",
    "designer_system_latent",
    "designer_request",
    "repair",
    "reflection",
    "critic",
    "analyzer",
    "judge",
    "preference",
    "task_score",
    "task_score_repair",
    "chat_revision",
)


class Prompts:
    """Renders the message templates, the user's folder (if any) before the shipped one."""

    def __init__(self, user_folder: Path | None = None):
        folders = [str(data_dir("prompts"))]
        if user_folder is not None:
            if not Path(user_folder).is_dir():
                raise PromptError(f"prompt folder {user_folder} does not exist")
            folders.insert(0, str(user_folder))
        self._environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folders),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            autoescape=False,
        )

    def render(self, name: str, **variables) -> str:
        if name not in TEMPLATES:
            raise PromptError(f"unknown prompt {name!r}; the prompts are {', '.join(TEMPLATES)}")
        try:
            return self._environment.get_template(f"{name}.j2").render(**variables).strip() + "\n"
        except jinja2.UndefinedError as error:
            raise PromptError(f"prompt {name!r} needs a variable it was not given: {error.message}") from None
        except jinja2.TemplateSyntaxError as error:
            raise PromptError(f"prompt template {error.filename}, line {error.lineno}: {error.message}") from None
        except jinja2.TemplateNotFound:
            raise PromptError(f"prompt template {name}.j2 is missing") from None
