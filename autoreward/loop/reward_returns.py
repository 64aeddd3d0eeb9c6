"""The reward's own returns on the held-out episodes, scored in a worker of its own after the evaluation.

The evaluation worker never runs a reward program, so it knows each held-out
episode's task score and the environment's own return, not what the reward
paid. For the reflection and the reports, a third worker (job "returns",
jailed like a training) loads the program and scores the episodes the
evaluation recorded (`episodes.npz`, every transition), one batch an episode,
watched by the passive check as a training is. Its figures are the reward's
own, reported by a process that ran candidate code: they are checked (finite,
one per episode, the components named) and shown, and never pick anything.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from autoreward.config import Task, WorkerLimits
from autoreward.errors import WorkerError
from autoreward.loop.evaluation import EPISODES_FILE
from autoreward.loop.runner import Runner
from autoreward.records import Evaluation
from autoreward.sandbox import worker_files
from autoreward.serialize import to_dict

SCORING_FOLDER = "scoring"  # inside a training's folder: the scoring worker's own
MAX_COMPONENTS = 64


@dataclass(frozen=True)
class EpisodeReturns:
    """What one held-out episode paid under the reward, by the scoring worker's word."""

    reward_return: float
    component_returns: dict[str, float]


def with_reward_returns(
    task: Task,
    code: str,
    evaluation: Evaluation,
    evaluation_dir: Path,
    scoring_dir: Path,
    runner: Runner,
    first_step: int = 0,
) -> Evaluation:
    """`evaluation` with each episode's reward and component returns, scored by `code` in a worker.

    The recorded episodes are copied into `scoring_dir` (the worker sees only its folder) and removed from
    both folders once scored. Raises `RewardFailure` when the program broke its contract on those states.
    """
    worker_files.clear_folder(scoring_dir)
    worker_files.copy_file(evaluation_dir, EPISODES_FILE, scoring_dir / EPISODES_FILE, worker_files.ARRAYS_BYTES)
    payload = {"task": to_dict(task), "code": code, "file": EPISODES_FILE, "first_step": first_step}
    limits = WorkerLimits(wall_seconds=600.0, idle_seconds=120.0, memory_bytes=4 * 1024**3)
    outcome = runner.run("returns", payload, scoring_dir, limits, task)
    failed, where = "scoring the held-out episodes failed", "the scoring worker's result"
    returns = worker_files.job_result(outcome, list[EpisodeReturns], failed, where)
    if len(returns) != len(evaluation.episodes) or any(len(r.component_returns) > MAX_COMPONENTS for r in returns):
        raise WorkerError(
            f"scoring the held-out episodes failed: the worker reported {len(returns)} episodes of "
            f"{len(evaluation.episodes)}, or more than {MAX_COMPONENTS} components"
        )
    for folder in (scoring_dir, evaluation_dir):  # every transition of ten episodes: tens of MB, not kept
        (folder / EPISODES_FILE).unlink(missing_ok=True)
    episodes = tuple(
        replace(episode, reward_return=r.reward_return, component_returns=dict(r.component_returns))
        for episode, r in zip(evaluation.episodes, returns)
    )
    return replace(evaluation, episodes=episodes)


# --- inside the scoring worker ------------------------------------------------------------------


def run_returns_job(payload: dict[str, Any], output_dir: Path, channel) -> list[dict]:
    """Each recorded episode's return under the program, in total and by component, summed step by step."""
    from autoreward.contract import forms
    from autoreward.contract.passive import PassiveChecker
    from autoreward.serialize import from_dict
    from autoreward.sim.observation_state import state_layout
    from autoreward.sim.state import read_only
    from autoreward.sim.trajectory import episodes_of
    from autoreward.task.files import make_env

    task = from_dict(Task, payload["task"])
    function = PassiveChecker(forms.load_as_reward(payload["code"]), payload["code"], payload["first_step"])
    env = make_env(task)
    layout = state_layout(env, extras=task.extras)
    env.close()
    with np.load(output_dir / payload["file"], allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    discrete = getattr(layout, "discrete_actions", 0)
    results = []
    for before, action, after in episodes_of(arrays, layout.shapes):
        channel.progress(stage="scoring", episodes=len(results))
        action = action.astype(np.int64) if discrete else action
        total, components = function(layout.state(before), read_only(action), layout.state(after))
        # Summed in step order, as a training's books add one step at a time.
        results.append(
            to_dict(
                EpisodeReturns(
                    reward_return=float(np.add.accumulate(np.asarray(total, np.float64))[-1]),
                    component_returns={
                        name: float(np.add.accumulate(np.asarray(values, np.float64))[-1])
                        for name, values in components.items()
                    },
                )
            )
        )
    return results
