"""autoreward: turn a task written in words into reward code that trains a good policy.

The Python API (`autoreward.api`, documented there and in README's "Using it from Python"):

    import autoreward
    task = autoreward.load_task("half_cheetah_backward")
    trained = autoreward.train(task, open("reward.py").read(), steps=50_000)
    run = autoreward.design(task, llm=autoreward.LLMSettings(model="gpt-4o-mini"))

Importing the package is cheap: the API's modules (and torch, gymnasium, MuJoCo behind them) load when a name
of `__all__` is first used. Every other module is internal: its names may change between versions.
"""

from __future__ import annotations

import importlib
from typing import Any

from autoreward.resources import autoreward_version

__version__ = autoreward_version()

# Each public name and the module it lives in.
_PUBLIC = {
    "load_task": "autoreward.api",
    "describe": "autoreward.api",
    "check": "autoreward.api",
    "train": "autoreward.api",
    "baselines": "autoreward.api",
    "preview": "autoreward.api",
    "PreviewedReward": "autoreward.api",
    "design": "autoreward.api",
    "DEMO_TRANSCRIPT": "autoreward.api",
    "chat": "autoreward.api",
    "ChatResult": "autoreward.api",
    "Run": "autoreward.api",
    "TrainedReward": "autoreward.api",
    "RewardCheckFailed": "autoreward.api",
    "training_config": "autoreward.api",
    "Task": "autoreward.config",
    "Budget": "autoreward.config",
    "LoopConfig": "autoreward.config",
    "LLMSettings": "autoreward.config",
    "TrainingConfig": "autoreward.config",
    "PlannerSettings": "autoreward.config",
    "AutorewardError": "autoreward.errors",
    "WorkerError": "autoreward.errors",
    "Interrupted": "autoreward.errors",
    "ReviewServer": "autoreward.review.server",
    "connect_executor": "autoreward.sandbox.executor",
    "Runner": "autoreward.loop.runner",
    "runs": "autoreward.api",
    "list_tasks": "autoreward.api",
    "examine_score": "autoreward.api",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # once found, a plain attribute
        return value
    raise AttributeError(f"module 'autoreward' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
