"""Held-out evaluation in a worker of its own, where no candidate code runs: the trusted task score.

The training worker runs a reward program, so nothing it computes can be
trusted: a program that escapes the restricted Python could rewrite the
simulator's buffers or the task score's books in its own process. So the
held-out episodes are played elsewhere. `evaluate_policy` (the
orchestrator's call) copies the policy's weights and the normalizer's
statistics, plain arrays (`loop/policy_files.py`), out of the training
worker's folder through the one reader of worker files, and starts an
evaluation worker (job "evaluate", jailed) that never imports a reward
program. It builds the recipe's network, loads the weights, plays
deterministic episodes on seeds training never used, on gymnasium's own
environments whatever the training simulator, and computes the task score,
its success, the trajectory summary and the video. Every State field is
copied, so the score never depends on what a reward happened to read.

It also keeps every transition of those episodes (`episodes.npz`), which a
third worker scores with the reward program (`loop/reward_returns.py`) for
the reflection and the reports, and a sample of them (`transitions.npz`)
for pre-screening later rewards.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from autoreward.config import Task, TrainingConfig, WorkerLimits
from autoreward.errors import VideoError, WorkerError
from autoreward.loop.policy_files import NORMALIZER_STATISTICS, POLICY_WEIGHTS
from autoreward.loop.runner import Runner
from autoreward.records import Evaluation, RewardRead
from autoreward.sandbox import worker_files
from autoreward.serialize import to_dict

# Held-out evaluation episodes use seeds far from any training seed.
EVALUATION_SEED_BASE = 1_000_000
EXPLORING_SEED_OFFSET = 500_000  # the exploring episodes' seeds, after the held-out ones
TRANSITIONS_PER_EPISODE = 100  # kept from each held-out episode for pre-screening
TRANSITIONS_FILE = "transitions.npz"  # a sample of the held-out transitions, for pre-screening
EPISODES_FILE = "episodes.npz"  # every held-out transition, for the reward's own returns (then removed)
EVALUATION_FOLDER = "evaluation"  # inside a training's folder: the evaluation worker's own
EVALUATION_SECONDS = 1800.0


@dataclass(frozen=True)
class HeldOut:
    """What the evaluation worker reports: the trusted evaluation, and the policy's video."""

    evaluation: Evaluation
    video: str | None = None
    video_error: str | None = None


def evaluate_policy(
    task: Task,
    config: TrainingConfig,
    learner_dir: Path,
    evaluation_dir: Path,
    runner: Runner,
    on_progress: Callable[[dict], None] | None = None,
    exploring_episodes: int = 0,
    reads: tuple[RewardRead, ...] = (),
) -> HeldOut:
    """Score the policy a training worker left in `learner_dir`, in an evaluation worker in `evaluation_dir`.

    `exploring_episodes`: as many more episodes played with sampled actions (`exploring_fitness_mean`),
    for successive halving's ranking of a slice. `reads`: what the reward reads (`contract.reads.reward_reads`
    of its text), for the trajectory summary; plain records, so the worker still runs no reward program.

    Raises WorkerError (a `WorkerFileError` when the training worker's files are refused) if it cannot.
    """
    worker_files.clear_folder(evaluation_dir)
    worker_files.copy_file(learner_dir, POLICY_WEIGHTS, evaluation_dir / POLICY_WEIGHTS, worker_files.WEIGHTS_BYTES)
    normalized = worker_files.copy_if_present(
        learner_dir, NORMALIZER_STATISTICS, evaluation_dir / NORMALIZER_STATISTICS, worker_files.WEIGHTS_BYTES
    )
    payload = {
        "task": to_dict(task),
        "config": to_dict(config),
        "normalized": normalized,
        "exploring_episodes": exploring_episodes,
        "reads": to_dict(tuple(reads)),
    }
    limits = WorkerLimits(wall_seconds=EVALUATION_SECONDS, idle_seconds=300.0, memory_bytes=config.memory_bytes)
    outcome = runner.run("evaluate", payload, evaluation_dir, limits, task, on_progress)
    failed, where = "the held-out evaluation failed", "the evaluation worker's result"
    held_out = worker_files.job_result(outcome, HeldOut, failed, where)
    if len(held_out.evaluation.episodes) != config.eval_episodes:
        raise WorkerError(
            f"the held-out evaluation failed: it reported {len(held_out.evaluation.episodes)} episodes "
            f"of the {config.eval_episodes} it was asked for"
        )
    return held_out


# --- inside the evaluation worker: no reward program is imported here ---------------------------------


def run_evaluation_job(payload: dict[str, Any], output_dir: Path, channel) -> dict:
    import torch

    from autoreward.loop.policy_files import build_policy, load_weights, normalizer_from
    from autoreward.serialize import from_dict
    from autoreward.sim.video import FRAMES_FOLDER, VIDEO_FILE, record_video, write_frames

    torch.set_num_threads(1)
    task = from_dict(Task, payload["task"])
    config = from_dict(TrainingConfig, payload["config"])
    source = config.reward_source if config.reward_source != "program" else "native"
    env = _evaluation_env(task, source)
    policy = build_policy(config, env)
    load_weights(policy, _arrays(output_dir / POLICY_WEIGHTS), POLICY_WEIGHTS)
    normalizer = None
    if payload["normalized"]:
        normalizer = normalizer_from(_arrays(output_dir / NORMALIZER_STATISTICS), env, NORMALIZER_STATISTICS)
    channel.progress(stage="evaluating", episodes=config.eval_episodes)
    reads = tuple(from_dict(RewardRead, read) for read in payload.get("reads", ()))
    evaluation = evaluate(
        policy, task, config, env, normalizer, output_dir / TRANSITIONS_FILE, output_dir / EPISODES_FILE, reads
    )
    if payload.get("exploring_episodes"):
        channel.progress(stage="evaluating", episodes=payload["exploring_episodes"])
        explored = _exploring_fitness(policy, task, source, normalizer, payload["exploring_episodes"])
        evaluation = replace(evaluation, exploring_fitness_mean=explored)
    video, video_error = None, None
    if config.video:
        channel.progress(stage="video")
        started, cpu = time.monotonic(), time.process_time()
        try:
            video = record_video(policy, task, EVALUATION_SEED_BASE, output_dir / VIDEO_FILE, normalizer).name
            print(
                f"video: {video} in {time.monotonic() - started:.2f} s ({time.process_time() - cpu:.2f} s of CPU)",
                file=sys.stderr,
                flush=True,
            )
            _write_frames(write_frames, output_dir / video, output_dir / FRAMES_FOLDER)
        except VideoError as error:  # never fails the evaluation: the result says why
            video_error = str(error)
            print(f"no video: {video_error}", file=sys.stderr, flush=True)
            channel.progress(stage="video", error=video_error)
    return to_dict(HeldOut(evaluation, f"{EVALUATION_FOLDER}/{video}" if video else None, video_error))


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def _exploring_fitness(policy, task: Task, reward_source: str, normalizer, episodes: int) -> float | None:
    """The mean task score of `episodes` episodes of the policy sampling its actions, as it does in training
    (early in training the deterministic policy often stands still while the sampling one already moves)."""
    import torch

    from autoreward.sim.vec_env import EPISODE_INFO_KEY

    env = _evaluation_env(task, reward_source)
    scores = []
    for index in range(episodes):
        seed = EVALUATION_SEED_BASE + EXPLORING_SEED_OFFSET + index
        env.seed(seed)
        torch.manual_seed(seed)
        observations = env.reset()
        while True:
            if normalizer is not None:
                observations = normalizer.normalize_obs(observations)
            actions, _ = policy.predict(observations, deterministic=False)
            observations, _, dones, infos = env.step(actions)
            if dones[0]:
                fitness = infos[0][EPISODE_INFO_KEY].fitness
                if fitness is not None:
                    scores.append(fitness)
                break
    env.close()
    return float(np.mean(scores)) if scores else None


def _evaluation_env(task: Task, reward_source: str):
    from autoreward.sim.vec_env import make_vec_env

    # Every field copied: the held-out fitness is the selection score, exact whatever was read when.
    return make_vec_env(task, 1, EVALUATION_SEED_BASE, reward_source, None, copy_all_fields=True)


def _write_frames(write_frames, video: Path, folder: Path) -> None:
    """Stills of the video for a judge that watches, decoded here in the jailed worker, never in the orchestrator;
    a video without them is still a video (the judge then reads the policy's summary alone)."""
    started = time.monotonic()
    try:
        write_frames(video, folder)
        print(f"frames: {folder.name}/ in {time.monotonic() - started:.2f} s", file=sys.stderr, flush=True)
    except VideoError as error:
        print(f"no frames: {error}", file=sys.stderr, flush=True)


def evaluate(
    policy,
    task: Task,
    config: TrainingConfig,
    env,
    normalizer=None,
    transitions_path: Path | None = None,
    episodes_path: Path | None = None,
    reads: tuple[RewardRead, ...] = (),
) -> Evaluation:
    """Run `config.eval_episodes` deterministic episodes of `policy` (anything with SB3's `predict`) with
    held-out seeds on `env` (one environment, its reward the environment's own or the task score's) and score them.

    With `transitions_path`, a sample of each episode's transitions (about `TRANSITIONS_PER_EPISODE`) is
    saved there for pre-screening later rewards; with `episodes_path`, every transition, for the reward's
    own returns. `reads`: what the reward reads, summarised beside the key quantities.
    """
    from autoreward.sim.trajectory import EpisodeRecorder, TrajectoryRecorder, TransitionSampler
    from autoreward.sim.vec_env import EPISODE_INFO_KEY

    recorder = TrajectoryRecorder(env.layout, reads)
    limit = task.max_episode_steps or env.venv.envs[0].spec.max_episode_steps or 1000
    sampler = TransitionSampler(stride=-(-limit // TRANSITIONS_PER_EPISODE))
    everything = EpisodeRecorder()
    env.observers += [recorder.observe, sampler.observe, everything.observe]
    episodes = []
    for index in range(config.eval_episodes):
        seed = EVALUATION_SEED_BASE + index
        env.seed(seed)
        observations = env.reset()
        while True:
            if normalizer is not None:
                observations = normalizer.normalize_obs(observations)
            actions, _ = policy.predict(observations, deterministic=True)
            observations, _, dones, infos = env.step(actions)
            if dones[0]:
                episode = replace(infos[0][EPISODE_INFO_KEY], seed=seed)
                episodes.append(episode)
                recorder.end_episode(episode.terminated)
                sampler.end_episode()
                everything.end_episode()
                break
    env.close()
    if transitions_path is not None:
        sampler.save(transitions_path)
    if episodes_path is not None:
        everything.save(episodes_path)
    fitness = [e.fitness for e in episodes if e.fitness is not None]
    success = None
    if task.fitness is not None and task.success_threshold is not None:
        success = float(np.mean([task.fitness.succeeded(f, task.success_threshold) for f in fitness]))
    return Evaluation(
        episodes=tuple(episodes),
        fitness_mean=float(np.mean(fitness)) if fitness else None,
        fitness_std=float(np.std(fitness)) if fitness else None,
        length_mean=float(np.mean([e.length for e in episodes])),
        success_rate=success,
        summary=recorder.summary(),
    )
