"""A behaviour previewed in one episode by model-predictive control, without training (issue 28).

`preview` plays one episode of the task from its held-out reset with actions
planned by predictive sampling on the reward program
(`sim/predictive_sampling.py`), and reports it as a training's evaluation
is reported: the task score, the video, the trajectory summary and each
reward component's return. It keeps the trust boundary of training, in
three jailed workers:

1. **planning** (`run_planning_job`) loads the reward program, plans every
   action and writes only the actions (`actions.npz`, float32, one row a
   control step). Whatever else it reports is not read.
2. **replay** (`run_replay_job`) loads no reward program: it replays those
   actions open-loop from the same reset (MuJoCo is deterministic, so it is
   the planned episode), scores the episode on the task score and films it,
   as the held-out evaluation of a policy does (`evaluation.evaluate`).
3. **scoring** (`reward_returns.with_reward_returns`) gives each reward
   component's return over the replayed episode.

A hostile program can plan badly; it cannot change the score of what it
planned. An action file that is not a finite (steps, action size) array is
refused by the replay worker in one sentence.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from autoreward.config import PlannerSettings, Task, TrainingConfig, WorkerLimits
from autoreward.errors import TaskError, VideoError, WorkerError
from autoreward.loop.evaluation import EPISODES_FILE, EVALUATION_FOLDER, EVALUATION_SEED_BASE, HeldOut
from autoreward.loop.reward_returns import with_reward_returns
from autoreward.loop.runner import Runner
from autoreward.records import Evaluation
from autoreward.sandbox import worker_files
from autoreward.serialize import from_dict, to_dict, write_json

PLANNING_FOLDER = "planning"
SCORING_FOLDER = "scoring"
ACTIONS_FILE = "actions.npz"
RECORD_FILE = "preview.json"
PLANNING_SECONDS = 3600.0


@dataclass(frozen=True)
class Planned:
    """What the planning worker reports: how many actions it planned, and in how long (shown, not trusted)."""

    steps: int
    seconds: float


@dataclass(frozen=True)
class PreviewResult:
    """One previewed episode: the planner's settings, the episode as the task score and the reward saw it."""

    task_id: str
    planner: PlannerSettings
    steps: int
    evaluation: Evaluation  # one episode, scored in the replay worker; reward returns from the scoring worker
    planning_seconds: float
    replay_seconds: float
    video: str | None = None  # relative to the preview folder
    video_error: str | None = None

    @property
    def score(self) -> float | None:
        return self.evaluation.fitness_mean


def preview(
    task: Task,
    code: str,
    output_dir: Path,
    settings: PlannerSettings = PlannerSettings(),
    *,
    runner: Runner,
    on_progress: Callable[[dict], None] | None = None,
    video: bool = True,
    seed: int = 0,
) -> PreviewResult:
    """Plan, replay and score one episode of `task` under the reward program `code`, in `output_dir`.

    Raises WorkerError (one sentence) when a worker fails, RewardFailure when the program breaks its contract."""
    problem = settings.problem() or preview_problem(task)
    if problem is not None:
        raise TaskError(problem)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / RECORD_FILE).unlink(missing_ok=True)
    planning_dir = worker_files.clear_folder(output_dir / PLANNING_FOLDER)
    payload = {"task": to_dict(task), "code": code, "settings": to_dict(settings), "seed": seed}
    limits = WorkerLimits(wall_seconds=PLANNING_SECONDS, idle_seconds=300.0, memory_bytes=4 * 1024**3)
    outcome = runner.run("plan", payload, planning_dir, limits, task, on_progress)
    planned = worker_files.job_result(outcome, Planned, "planning failed", "the planning worker's result")

    started = time.monotonic()
    evaluation_dir = worker_files.clear_folder(output_dir / EVALUATION_FOLDER)
    worker_files.copy_file(planning_dir, ACTIONS_FILE, evaluation_dir / ACTIONS_FILE, worker_files.ARRAYS_BYTES)
    config = TrainingConfig.from_budget(task.budget, seed=seed, video=video).with_changes(
        eval_episodes=1, reward_source="native"
    )
    payload = {"task": to_dict(task), "config": to_dict(config)}
    limits = WorkerLimits(wall_seconds=600.0, idle_seconds=300.0, memory_bytes=4 * 1024**3)
    outcome = runner.run("replay", payload, evaluation_dir, limits, task, on_progress)
    held_out = worker_files.job_result(outcome, HeldOut, "the replay failed", "the replay worker's result")
    if len(held_out.evaluation.episodes) != 1:
        raise WorkerError(f"the replay failed: it reported {len(held_out.evaluation.episodes)} episodes, not 1")
    evaluation = with_reward_returns(
        task, code, held_out.evaluation, evaluation_dir, output_dir / SCORING_FOLDER, runner
    )
    result = PreviewResult(
        task_id=task.id,
        planner=settings,
        steps=held_out.evaluation.episodes[0].length,
        evaluation=evaluation,
        planning_seconds=planned.seconds,
        replay_seconds=time.monotonic() - started,
        video=held_out.video,
        video_error=held_out.video_error,
    )
    write_json(output_dir / RECORD_FILE, result)
    return result


def prescreen_problem(task: Task) -> str | None:
    """Why `--mpc-prescreen` cannot rank `task`'s candidates by their previews, in one sentence; None when it can."""
    if task.fitness is None:
        return f"--mpc-prescreen ranks candidates by their preview's task score, and {task.id} has no task score"
    return task.planner.problem() or preview_problem(task)


def preview_problem(task: Task) -> str | None:
    """Why `task` cannot be previewed, in one sentence (its environment has no MuJoCo model to plan on);
    None when it can. The environment is made here, as a task's probe makes it: no reward program runs."""
    import mujoco

    from autoreward.task.files import make_env

    env = make_env(task)
    try:
        model = getattr(env.unwrapped, "model", None)
    finally:
        env.close()
    if not isinstance(model, mujoco.MjModel):
        return (
            f"{task.env_id} has no MuJoCo model, and a preview plans on one: train the reward instead "
            "(autoreward train)"
        )
    return None


class ActionReplay:
    """Recorded actions played in order through SB3's `predict`, the last one held if they run out."""

    def __init__(self, actions: np.ndarray, observation_ndim: int):
        self._actions = actions
        self._observation_ndim = observation_ndim
        self._next = 0

    def predict(self, observation, deterministic: bool = True):
        action = self._actions[min(self._next, len(self._actions) - 1)]
        self._next += 1
        batched = np.ndim(observation) > self._observation_ndim
        return (action[None] if batched else action), None


# --- inside the workers ------------------------------------------------------------------------------------


def run_planning_job(payload: dict[str, Any], output_dir: Path, channel) -> dict:
    """Plan one episode with the reward program from the held-out reset; write the actions only."""
    import mujoco

    from autoreward.contract import forms
    from autoreward.sim.predictive_sampling import PredictiveSampler
    from autoreward.sim.state import StateLayout, read_only
    from autoreward.task.files import make_env

    task = from_dict(Task, payload["task"])
    settings = from_dict(PlannerSettings, payload["settings"])
    function = forms.load_as_reward(payload["code"])
    env = make_env(task)
    base = env.unwrapped
    if not isinstance(getattr(base, "model", None), mujoco.MjModel):
        raise TaskError(f"{task.env_id} has no MuJoCo model: a preview plans on one")
    layout = StateLayout.from_env(env, extras=task.extras)
    planner = PredictiveSampler(
        base.model,
        layout,
        lambda state, action, next_state: function(state, read_only(action), next_state),
        int(base.frame_skip),
        settings,
        seed=payload["seed"],
    )
    limit = task.max_episode_steps or env.spec.max_episode_steps or 1000
    started = time.monotonic()
    env.reset(seed=EVALUATION_SEED_BASE)
    actions = []
    for step in range(limit):
        action = planner.plan(base.data.qpos.copy(), base.data.qvel.copy()).astype(np.float32)
        actions.append(action)
        _, _, terminated, truncated, _ = env.step(action)
        if step % 20 == 0 or terminated or truncated:
            channel.progress(stage="training", step=step + 1, total=limit)
        if terminated or truncated:
            break
    env.close()
    np.savez(output_dir / ACTIONS_FILE, actions=np.array(actions, dtype=np.float32))
    seconds = time.monotonic() - started
    print(f"planned {len(actions)} steps in {seconds:.1f} s", file=sys.stderr, flush=True)
    return {"steps": len(actions), "seconds": seconds}


def run_replay_job(payload: dict[str, Any], output_dir: Path, channel) -> dict:
    """Replay the planned actions from the same reset: the task score, the summary and the video.

    No reward program is imported here."""
    from autoreward.loop.evaluation import _evaluation_env, evaluate
    from autoreward.sim.video import VIDEO_FILE, record_video

    task = from_dict(Task, payload["task"])
    config = from_dict(TrainingConfig, payload["config"])
    env = _evaluation_env(task, "native")
    actions = _checked_actions(output_dir / ACTIONS_FILE, env.action_space.shape)
    observation_ndim = len(env.observation_space.shape)
    channel.progress(stage="evaluating", episodes=1)
    evaluation = evaluate(
        ActionReplay(actions, observation_ndim), task, config, env, None, None, output_dir / EPISODES_FILE
    )
    video, video_error = None, None
    if config.video:
        channel.progress(stage="video")
        try:
            replay = ActionReplay(actions, observation_ndim)
            video = record_video(replay, task, EVALUATION_SEED_BASE, output_dir / VIDEO_FILE).name
        except VideoError as error:  # the preview stands without its video; the result says why
            video_error = str(error)
    return to_dict(HeldOut(evaluation, f"{EVALUATION_FOLDER}/{video}" if video else None, video_error))


def _checked_actions(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The planning worker's actions: a finite float array of one row a step, or one sentence why not."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            actions = np.asarray(stored["actions"])
    except (OSError, KeyError, ValueError) as error:
        raise WorkerError(f"the planned actions could not be read: {error}") from None
    if actions.ndim != 2 or actions.shape[1:] != tuple(shape) or len(actions) == 0:
        raise WorkerError(f"the planned actions have shape {actions.shape}, not (steps, {', '.join(map(str, shape))})")
    if actions.dtype.kind != "f" or not np.isfinite(actions).all():
        raise WorkerError("the planned actions are not all finite numbers")
    return actions.astype(np.float32)
