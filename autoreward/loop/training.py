"""Training a policy with SB3 on a task's reward, and scoring it on held-out episodes.

`train` is the orchestrator's call: it starts a worker and returns a
`TrainingResult`. `run_training_job` is what the worker runs: build the
task's environments with the chosen reward, train PPO or SAC, record
statistics at `curve_points` points, then evaluate the final policy on
episodes whose seeds training never used. The score is that evaluation,
never the best point of a noisy training curve. Last, unless turned off,
the first held-out episode is replayed into `video.mp4` (autoreward.video);
a video that cannot be made leaves `video_error` in the result, never a
failed training.

A training can be cut into slices (successive halving, `halving.py`):
`train(..., until=N)` stops at N steps, and `train(..., resume_from=folder)`
continues the policy a previous slice left in `folder`. The model is always
built for the whole budget (`config.steps`), so a sliced training learns
with the same hyperparameters and curve points as one made whole.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from autoreward.config import Task, TrainingConfig, WorkerLimits
from autoreward.errors import Interrupted, RewardFailure, TaskError, VideoError, WorkerError
from autoreward.loop.evaluation import EVALUATION_SEED_BASE, TRANSITIONS_FILE, evaluate
from autoreward.records import CurvePoint, TrainingResult
from autoreward.sandbox.executor import LocalExecutor, WorkerExecutor
from autoreward.sandbox.jail import Jail, gpu_devices
from autoreward.serialize import from_dict, read_json, to_dict, write_json
from autoreward.sim.video import FRAMES_FOLDER, VIDEO_FILE, record_video, write_frames
from autoreward.task.files import task_folders, task_python_paths

PROGRESS_INTERVAL_SECONDS = 2.0
# What a slice leaves for the next one to continue from; `train` copies them into the next slice's START_FOLDER.
CHECKPOINT_FILES = ("policy.zip", "vecnormalize.pkl", "replay_buffer.pkl", "training.json")
START_FOLDER = "start"


def train(
    task: Task,
    config: TrainingConfig,
    output_dir: Path,
    code: str | None = None,
    on_progress: Callable[[dict], None] | None = None,
    jail: Jail | None = None,
    executor: WorkerExecutor | None = None,
    until: int | None = None,
    resume_from: Path | None = None,
) -> TrainingResult:
    """Train and evaluate in a (jailed) worker; raise WorkerError with the reason if the worker fails.

    `executor` says where the worker runs (default: this machine); its files end up in `output_dir` either way.
    `until`: stop after this many steps in all (default `config.steps`); the
    model is still built for `config.steps`. `resume_from`: a folder where an
    earlier slice of this same training finished; its policy (and
    normalization, and SAC's replay buffer) is copied into `output_dir` and
    training continues from it, with the curve and wall time cumulative.
    """
    if config.reward_source == "program" and code is None:
        raise ValueError("training on a reward program needs its code")
    if config.algo == "sac":
        _refuse_sac_without_box_actions(task)
    until = config.steps if until is None else until
    if resume_from is not None:
        _copy_checkpoint(Path(resume_from), Path(output_dir) / START_FOLDER)
    payload = {
        "task": to_dict(task),
        "config": to_dict(config),
        "code": code,
        "until": until,
        "resume": resume_from is not None,
    }
    # "cuda" asks the executor for a GPU of its choice; "cuda:N" is pinned to GPU N of the machine, so it asks none.
    limits = WorkerLimits(
        wall_seconds=config.wall_seconds,
        idle_seconds=300.0,
        memory_bytes=None if config.on_gpu else config.memory_bytes,
        gpus=int(config.device == "cuda"),
    )
    jail = (jail if jail is not None else Jail.detect()).showing(task_folders(task)).importing(task_python_paths(task))
    if config.on_gpu:
        jail = jail.with_gpus()
    outcome = (executor or LocalExecutor()).run("train", payload, output_dir, limits, on_progress, jail)
    if outcome.status == "interrupted":  # no record: a resumed run trains it again
        raise Interrupted(message=outcome.message)
    if outcome.status != "ok" and outcome.category is not None:  # the reward broke its contract: say so, alone
        raise RewardFailure(outcome.category, f"training failed: {outcome.message}")
    if outcome.status != "ok":
        raise WorkerError(f"training failed: {outcome.message}\n{outcome.log_tail[-1500:]}".rstrip())
    shutil.rmtree(Path(output_dir) / START_FOLDER, ignore_errors=True)  # the previous slice's folder keeps them
    return from_dict(TrainingResult, outcome.result)


def _refuse_sac_without_box_actions(task: Task) -> None:
    """SAC learns continuous actions only: a Discrete environment is refused in one sentence, before any worker."""
    import gymnasium

    from autoreward.task.files import make_env

    env = make_env(task)
    space = env.action_space
    env.close()
    if not isinstance(space, gymnasium.spaces.Box):
        raise TaskError(f"SAC trains only continuous (Box) actions, and {task.env_id}'s are {space}: train it with PPO")


def _write_frames(video: Path, folder: Path) -> None:
    """Stills of the video for a judge that watches, decoded here in the jailed worker, never in the orchestrator;
    a video without them is still a video (the judge then reads the policy's summary alone)."""
    started = time.monotonic()
    try:
        write_frames(video, folder)
        print(f"frames: {folder.name}/ in {time.monotonic() - started:.2f} s", file=sys.stderr, flush=True)
    except VideoError as error:
        print(f"no frames: {error}", file=sys.stderr, flush=True)


def _copy_checkpoint(source: Path, target: Path) -> None:
    """The files a slice continues from, copied into its own folder: the jail shows a worker nothing else."""
    if finished_training(source) is None:
        raise ValueError(f"cannot continue from {source}: no training finished there (no training.json)")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in CHECKPOINT_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)


def finished_training(output_dir: Path) -> TrainingResult | None:
    """The result a worker left in `output_dir` if its training ran to the end (e.g. before an interruption)."""
    path = Path(output_dir) / "training.json"
    return read_json(path, TrainingResult) if path.exists() else None


# --- inside the worker -------------------------------------------------------


def ppo_sizes(steps: int, n_envs: int) -> tuple[int, int]:
    """Rollout length per environment and minibatch size: at least ~8 updates even on tiny budgets."""
    n_steps = 2 ** int(np.log2(max(16, steps // (n_envs * 8))))
    n_steps = min(n_steps, 2048)
    return n_steps, min(64, n_steps * n_envs)


# The discount of every algorithm autoreward trains (SB3's default), and of VecNormalize's return estimate.
GAMMA = 0.99


def describe_training(config: TrainingConfig, episode_steps: int | None) -> str:
    """How a policy will be trained, in the designer's words: what decides how large each term may be."""
    algorithm = {"ppo": "PPO", "sac": "SAC"}[config.algo]
    episodes = f", episodes of at most {episode_steps} steps" if episode_steps else ""
    lines = [
        f"How the policy will be trained: {algorithm} (stable-baselines3) for {config.steps:,} environment steps in "
        f"all, {config.n_envs} environments stepped together{episodes}, discount {GAMMA}."
    ]
    if config.algo == "ppo" and config.normalize:
        lines.append(
            "Rewards (and observations) are normalized by a running estimate of the return's scale (VecNormalize), "
            "so only the relative size of your terms matters, not their absolute scale. A term paid at every step "
            "the robot is alive adds up over the episode: large enough, it teaches the policy to stay alive (or, "
            "if negative, to end the episode) long before it teaches the task."
        )
    else:
        lines.append(
            f"{algorithm} learns from the raw rewards, with no normalization: their scale matters. Keep the "
            "per-step total within about ±10, and every term within a known range."
        )
    return " ".join(lines)


def build_model(config: TrainingConfig, env, seed: int):
    from stable_baselines3 import PPO, SAC

    if config.algo == "ppo":
        n_steps, batch_size = ppo_sizes(config.steps, config.n_envs)
        if config.on_gpu:  # a GPU learns from a few large minibatches (8 a rollout), not many of 64
            batch_size = max(batch_size, n_steps * config.n_envs // 8)
        return PPO(
            "MlpPolicy",
            env,
            n_steps=n_steps,
            batch_size=batch_size,
            gamma=GAMMA,
            seed=seed,
            device=config.device,
            verbose=0,
        )
    if config.algo == "sac":
        return SAC(
            "MlpPolicy",
            env,
            gamma=GAMMA,
            learning_starts=min(10_000, max(100, config.steps // 10)),
            buffer_size=min(1_000_000, max(10_000, config.steps)),
            seed=seed,
            device=config.device,
            verbose=0,
        )
    raise ValueError(f"unknown algorithm {config.algo!r}: use 'ppo' or 'sac'")


def _curve_callback(
    reward_env,
    config: TrainingConfig,
    channel,
    curve_path: Path,
    previous: TrainingResult | None = None,
    until: int | None = None,
):
    """`previous`: the slices before this one, whose points are written to `curve_path` first.

    A slice that ends before the whole budget (`until`) ends with a point of
    its own, so that its last episodes are in its curve (successive halving
    ranks a rung by them) and not lost with its worker.
    """
    earlier = previous.curve if previous is not None else ()
    start_step = previous.steps if previous is not None else 0
    from stable_baselines3.common.callbacks import BaseCallback

    class CurveCallback(BaseCallback):
        """Records a CurvePoint at evenly spaced steps, and reports progress every few seconds."""

        def __init__(self):
            super().__init__()
            self.points: list[CurvePoint] = list(earlier)
            self.checkpoints = [config.steps * (k + 1) // config.curve_points for k in range(config.curve_points)]
            self.checkpoints = [c for c in self.checkpoints if c > start_step]  # earlier slices recorded those
            if until is not None and until < config.steps:
                self.checkpoints = sorted({c for c in self.checkpoints if c < until} | {until})
            self.started = self.last_report = time.monotonic()
            self.wall_offset = previous.wall_seconds if previous is not None else 0.0
            self.last_point_step = start_step
            self.last_point_time = self.started
            with curve_path.open("w") as stream:
                stream.writelines(json.dumps(to_dict(p)) + "\n" for p in earlier)

        def _on_step(self) -> bool:
            now = time.monotonic()
            while self.checkpoints and self.num_timesteps >= self.checkpoints[0]:
                self.checkpoints.pop(0)
                self._record(now)
            if now - self.last_report > PROGRESS_INTERVAL_SECONDS:
                self.last_report = now
                channel.progress(stage="training", step=self.num_timesteps, total=config.steps)
            return True

        def _record(self, now: float) -> None:
            window = reward_env.take_window()
            fitness_values = [e.fitness for e in window.episodes if e.fitness is not None]
            partial = not window.episodes and reward_env.running_fitness() is not None
            if fitness_values:
                fitness = float(np.mean(fitness_values))
            elif partial:
                fitness = float(np.mean(reward_env.running_fitness()))
            else:
                fitness = None
            elapsed = now - self.last_point_time
            point = CurvePoint(
                step=int(self.num_timesteps),
                wall_seconds=self.wall_offset + now - self.started,
                steps_per_second=(self.num_timesteps - self.last_point_step) / max(elapsed, 1e-9),
                reward_mean=window.reward_sum / max(window.steps, 1),
                components=window.component_stats(),
                episodes=len(window.episodes),
                episode_length=float(np.mean([e.length for e in window.episodes])) if window.episodes else None,
                fitness=fitness,
                fitness_partial=partial,
            )
            self.last_point_step, self.last_point_time = self.num_timesteps, now
            self.points.append(point)
            with curve_path.open("a") as stream:
                stream.write(json.dumps(to_dict(point)) + "\n")
            channel.progress(stage="curve", step=point.step, total=config.steps, fitness=point.fitness)

    return CurveCallback()


def run_training_job(payload: dict[str, Any], output_dir: Path, channel) -> dict:
    import torch
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecNormalize

    from autoreward.contract import reward_program
    from autoreward.contract.passive import PassiveChecker
    from autoreward.sim.vec_env import make_vec_env

    torch.set_num_threads(1)
    task = from_dict(Task, payload["task"])
    config = from_dict(TrainingConfig, payload["config"])
    if config.on_gpu and not torch.cuda.is_available():
        chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise RuntimeError(
            f"--device {config.device}: no CUDA device is visible to the training worker "
            f"(devices passed in: {', '.join(gpu_devices()) or 'none found under /dev'}"
            + (f"; CUDA_VISIBLE_DEVICES={chosen}" if chosen is not None else "")
            + ")"
        )
    until = int(payload.get("until") or config.steps)
    start = output_dir / START_FOLDER if payload.get("resume") else None
    previous = read_json(start / "training.json", TrainingResult) if start is not None else None
    reward_function = None
    if config.reward_source == "program":  # watched on every call: the first broken batch ends the training
        first_step = previous.steps if previous is not None else 0
        reward_function = PassiveChecker(reward_program.load(payload["code"]), payload["code"], first_step)

    # A continued slice steps its environments from other seeds than the first did (never the held-out ones).
    seed = config.seed if previous is None else (config.seed + previous.steps) % (EVALUATION_SEED_BASE - config.n_envs)
    reward_env = make_vec_env(
        task,
        config.n_envs,
        seed,
        config.reward_source,
        reward_function,
        simulator=config.simulator,
        device=config.device,
    )
    env = reward_env
    if config.normalize and config.algo == "ppo":
        if start is not None and (start / "vecnormalize.pkl").exists():
            env = VecNormalize.load(str(start / "vecnormalize.pkl"), reward_env)
        else:
            env = VecNormalize(reward_env, gamma=GAMMA)
    model = build_model(config, env, config.seed) if start is None else _continued_model(config, env, start, seed)
    callback = _curve_callback(reward_env, config, channel, output_dir / "curve.jsonl", previous, until)
    model.set_logger(Logger(folder=None, output_formats=[]))  # else SB3 leaves an empty folder in /tmp per training
    started = time.monotonic()
    model.learn(
        total_timesteps=max(0, until - model.num_timesteps), callback=callback, reset_num_timesteps=start is None
    )
    wall = time.monotonic() - started + (previous.wall_seconds if previous is not None else 0.0)
    model.save(output_dir / "policy.zip")
    normalizer = env if isinstance(env, VecNormalize) else None
    if normalizer is not None:
        normalizer.save(str(output_dir / "vecnormalize.pkl"))
    if config.algo == "sac" and until < config.steps:  # another slice will need what SAC learns from
        model.save_replay_buffer(output_dir / "replay_buffer.pkl")

    channel.progress(stage="evaluating", episodes=config.eval_episodes)
    evaluation = evaluate(model, task, config, reward_function, normalizer, output_dir / TRANSITIONS_FILE)
    video, video_error = None, None
    if config.video:
        channel.progress(stage="video")
        started, cpu = time.monotonic(), time.process_time()
        try:
            video = record_video(model, task, EVALUATION_SEED_BASE, output_dir / VIDEO_FILE, normalizer).name
            print(
                f"video: {video} in {time.monotonic() - started:.2f} s ({time.process_time() - cpu:.2f} s of CPU)",
                file=sys.stderr,
                flush=True,
            )
            _write_frames(output_dir / video, output_dir / FRAMES_FOLDER)
        except VideoError as error:  # never fails the training: the result says why
            video_error = str(error)
            print(f"no video: {video_error}", file=sys.stderr, flush=True)
            channel.progress(stage="video", error=video_error)
    result = TrainingResult(
        task_id=task.id,
        reward_source=config.reward_source,
        algo=config.algo,
        steps=int(model.num_timesteps),
        seed=config.seed,
        n_envs=config.n_envs,
        curve=tuple(callback.points),
        evaluation=evaluation,
        wall_seconds=wall,
        steps_per_second=model.num_timesteps / max(wall, 1e-9),
        video=video,
        video_error=video_error,
    )
    write_json(output_dir / "training.json", result)
    return to_dict(result)


def _continued_model(config: TrainingConfig, env, start: Path, seed: int):
    """The model an earlier slice saved in `start`, on fresh environments, with its optimizer state and step count."""
    from stable_baselines3 import PPO, SAC

    algorithm = {"ppo": PPO, "sac": SAC}[config.algo]
    model = algorithm.load(start / "policy.zip", env=env, device=config.device)
    model.set_random_seed(seed)
    if config.algo == "sac" and (start / "replay_buffer.pkl").exists():
        model.load_replay_buffer(start / "replay_buffer.pkl")
    return model
