"""Held-out evaluation: a trained policy's deterministic episodes on seeds training never used, scored.

Runs in the training worker, on gymnasium's own environments whatever the
training simulator, so scores compare across simulators. Every State field is
copied, so the task score never depends on what the reward happened to read.
A sample of each episode's transitions is kept for pre-screening later rewards.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from autoreward.config import Task, TrainingConfig
from autoreward.records import Evaluation

# Held-out evaluation episodes use seeds far from any training seed.
EVALUATION_SEED_BASE = 1_000_000
TRANSITIONS_PER_EPISODE = 100  # kept from each held-out episode for pre-screening
TRANSITIONS_FILE = "transitions.npz"  # beside training.json


def evaluate(
    model, task: Task, config: TrainingConfig, reward_function, normalizer=None, transitions_path: Path | None = None
) -> Evaluation:
    """Run `config.eval_episodes` deterministic episodes with held-out seeds and score them.

    With `transitions_path`, a sample of each episode's transitions (about
    `TRANSITIONS_PER_EPISODE`) is saved there for pre-screening later rewards.
    """
    from autoreward.sim.trajectory import TrajectoryRecorder, TransitionSampler
    from autoreward.sim.vec_env import EPISODE_INFO_KEY, make_vec_env

    # Every field copied: the held-out fitness is the selection score, exact whatever the reward reads when.
    env = make_vec_env(task, 1, EVALUATION_SEED_BASE, config.reward_source, reward_function, copy_all_fields=True)
    recorder = TrajectoryRecorder(env.layout)
    limit = task.max_episode_steps or env.venv.envs[0].spec.max_episode_steps or 1000
    sampler = TransitionSampler(stride=-(-limit // TRANSITIONS_PER_EPISODE))
    env.observers += [recorder.observe, sampler.observe]
    episodes = []
    for index in range(config.eval_episodes):
        seed = EVALUATION_SEED_BASE + index
        env.seed(seed)
        observations = env.reset()
        while True:
            if normalizer is not None:
                observations = normalizer.normalize_obs(observations)
            actions, _ = model.predict(observations, deterministic=True)
            observations, _, dones, infos = env.step(actions)
            if dones[0]:
                episode = replace(infos[0][EPISODE_INFO_KEY], seed=seed)
                episodes.append(episode)
                recorder.end_episode(episode.terminated)
                sampler.end_episode()
                break
    env.close()
    if transitions_path is not None:
        sampler.save(transitions_path)
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
