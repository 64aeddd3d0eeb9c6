"""Training a policy with SB3 on a task's reward, then scoring it where no reward program runs.

`train` is the orchestrator's call, and it runs three workers, each jailed,
each with a folder of its own inside the training's folder:

1. `learner/`: the training worker (`run_training_job`) builds the task's
   environments with the chosen reward, trains PPO or SAC and records
   statistics at `curve_points` points. It runs the reward program, so what
   it reports is checked and never picks: its result (`LearnerResult`) and
   the policy it leaves, as plain arrays (`loop/policy_files.py`);
2. `evaluation/`: the evaluation worker (`loop/evaluation.py`) never imports
   a reward program. It loads those arrays into the recipe's network, plays
   the held-out episodes and computes the task score (the selection score,
   never the best point of a noisy training curve), the trajectory summary
   and the video;
3. `scoring/`: for a reward program, a worker (`loop/reward_returns.py`)
   scores the recorded held-out episodes with it: each episode's reward and
   component returns, for the reflection and the reports.

The training's folder itself is the orchestrator's: only it writes
`training.json` there, once all three have finished, so no worker can leave
a record that a resumed run would take for its own.

A training can be cut into slices (successive halving, `halving.py`):
`train(..., until=N)` stops at N steps, and `train(..., resume_from=folder)`
continues the policy a previous slice left in `folder`. The model is always
built for the whole budget (`config.steps`), so a sliced training learns
with the same hyperparameters and curve points as one made whole. What a
slice continues from (SB3's own files, pickles among them) is copied
through the reader of worker files into the next slice's training worker
and loaded there only, in the jail of the same candidate.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from autoreward.config import Task, TrainingConfig, WorkerLimits
from autoreward.contract import forms
from autoreward.contract.reads import reward_reads
from autoreward.contract.reward_program import program_form
from autoreward.errors import TaskError, WorkerError, WorkerFileError
from autoreward.loop.evaluation import EVALUATION_FOLDER, EVALUATION_SEED_BASE, evaluate_policy
from autoreward.loop.policy_files import save_policy
from autoreward.loop.reward_returns import SCORING_FOLDER, with_reward_returns
from autoreward.loop.runner import Runner
from autoreward.records import CurvePoint, FormReport, LearnerResult, TrainingResult
from autoreward.sandbox import worker_files
from autoreward.sandbox.jail import gpu_devices
from autoreward.serialize import from_dict, read_json, to_dict, write_json
from autoreward.sim.reward_forms import FORM_STATE_FILE

PROGRESS_INTERVAL_SECONDS = 2.0
LEARNER_FOLDER = "learner"  # inside a training's folder: the training worker's own
RECORD_FILE = "training.json"  # the orchestrator's record of a finished training, beside the workers' folders
# What a slice leaves for the next one to continue from; `train` copies them into the next slice's START_FOLDER.
CHECKPOINT_FILES = ("policy.zip", "vecnormalize.pkl", "replay_buffer.pkl", FORM_STATE_FILE)
START_FOLDER = "start"


def train(
    task: Task,
    config: TrainingConfig,
    output_dir: Path,
    code: str | None = None,
    on_progress: Callable[[dict], None] | None = None,
    *,
    runner: Runner,
    until: int | None = None,
    resume_from: Path | None = None,
) -> TrainingResult:
    """Train, evaluate and score in three (jailed) workers; raise WorkerError with the reason if one fails.

    `workers` says where the workers run and in what jail; their files end up in `output_dir` either
    way. `until`: stop after this many steps in all (default `config.steps`); the model is still built for
    `config.steps`. `resume_from`: a training folder where an earlier slice of this same training finished;
    its policy (and normalization, and SAC's replay buffer) is copied into this training's worker and
    training continues from it, with the curve and wall time cumulative.
    """
    if config.reward_source == "program" and code is None:
        raise ValueError("training on a reward program needs its code")
    if config.algo == "sac":
        _refuse_sac_without_box_actions(task)
    form = program_form(code) if config.reward_source == "program" else "reward"
    if forms.task_problem(form, task) is not None:
        raise TaskError(forms.task_problem(form, task))
    until = config.steps if until is None else until
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / RECORD_FILE).unlink(missing_ok=True)
    learner_dir = worker_files.clear_folder(output_dir / LEARNER_FOLDER)
    previous = None
    if resume_from is not None:
        previous = _copy_checkpoint(Path(resume_from), learner_dir / START_FOLDER)
    payload = {
        "task": to_dict(task),
        "config": to_dict(config),
        "code": code,
        "until": until,
        "previous": to_dict(previous) if previous is not None else None,
    }
    # "cuda" asks the executor for a GPU of its choice; "cuda:N" is pinned to GPU N of the machine, so it asks none.
    limits = WorkerLimits(
        wall_seconds=config.wall_seconds,
        idle_seconds=300.0,
        memory_bytes=None if config.on_gpu else config.memory_bytes,
        gpus=int(config.device == "cuda"),
    )
    outcome = runner.run("train", payload, learner_dir, limits, task, on_progress, gpus=config.on_gpu)
    learned = worker_files.job_result(outcome, LearnerResult, "training failed", "the training worker's result")
    if previous is not None:  # the previous slice's folder keeps what this one started from
        worker_files.clear_folder(learner_dir / START_FOLDER).rmdir()
    started = time.monotonic()
    # A slice short of the budget is ranked by successive halving: its exploring score, played here too.
    exploring = config.eval_episodes if until < config.steps else 0
    held_out = evaluate_policy(
        task, config, learner_dir, output_dir / EVALUATION_FOLDER, runner, on_progress, exploring,
        reads=reward_reads(code) if config.reward_source == "program" else (),
    )
    evaluation = held_out.evaluation
    if config.reward_source == "program":
        evaluation = with_reward_returns(
            task, code, evaluation, output_dir / EVALUATION_FOLDER, output_dir / SCORING_FOLDER, runner,
            first_step=learned.steps,
        )
    result = TrainingResult(
        task_id=task.id,
        reward_source=config.reward_source,
        algo=config.algo,
        steps=learned.steps,
        seed=config.seed,
        n_envs=config.n_envs,
        curve=learned.curve,
        evaluation=evaluation,
        wall_seconds=learned.wall_seconds,
        steps_per_second=learned.steps / max(learned.wall_seconds, 1e-9),
        video=held_out.video,
        video_error=held_out.video_error,
        evaluation_seconds=time.monotonic() - started,
        form=form,
        form_report=plausible_report(learned.form_report),
    )
    write_json(output_dir / RECORD_FILE, result)
    return result


def train_or_reuse(
    task: Task,
    config: TrainingConfig,
    output_dir: Path,
    code: str | None = None,
    on_progress: Callable[[dict], None] | None = None,
    *,
    runner: Runner,
    on_start: Callable[[], None] = lambda: None,
    **slice_of: Any,
) -> TrainingResult:
    """The training that finished in `output_dir` (an interrupted run's, read back), else a new one there.

    What an unfinished training left in the folder is cleared first, and `on_start` is called just before a new
    one starts. `slice_of` is `train`'s `until` and `resume_from`. Every caller that resumes a run (the final
    evaluation, seed confirmation, the baselines, halving's slices) trains through this, so a finished
    training is never trained twice and never half-reused.
    """
    done = finished_training(output_dir)
    if done is not None:
        return done
    shutil.rmtree(output_dir, ignore_errors=True)
    on_start()
    return train(task, config, output_dir, code, on_progress, runner=runner, **slice_of)


MAX_FORM_TERMS = 64


def plausible_report(report: FormReport | None) -> FormReport | None:
    """The training worker's report of its form reward, kept when every number in it is finite and its terms are
    few (it ran the program, so it is shown and never picks); None otherwise."""
    if report is None or len(report.terms) > MAX_FORM_TERMS:
        return None
    numbers = [report.beta or 0.0] + [v for t in report.terms for v in (t.low, t.high, t.weight or 0.0)]
    return report if all(np.isfinite(numbers)) else None


def _refuse_sac_without_box_actions(task: Task) -> None:
    """SAC learns continuous actions only: a Discrete environment is refused in one sentence, before any worker."""
    import gymnasium

    from autoreward.task.files import make_env

    env = make_env(task)
    space = env.action_space
    env.close()
    if not isinstance(space, gymnasium.spaces.Box):
        raise TaskError(f"SAC trains only continuous (Box) actions, and {task.env_id}'s are {space}: train it with PPO")


def _copy_checkpoint(source: Path, target: Path) -> TrainingResult:
    """The files a slice continues from, copied through the reader of worker files into the next slice's
    training worker (the jail shows a worker nothing else); returns the earlier slice's record."""
    previous = finished_training(source)
    if previous is None:
        raise ValueError(f"cannot continue from {source}: no training finished there (no {RECORD_FILE})")
    worker_files.clear_folder(target)
    learner = source / LEARNER_FOLDER
    try:
        for name in CHECKPOINT_FILES:
            worker_files.copy_if_present(learner, name, target / name, worker_files.CHECKPOINT_BYTES)
    except WorkerFileError as error:
        raise WorkerError(f"training failed: the slice it continues left a file that is refused: {error}") from None
    return previous


def finished_training(output_dir: Path) -> TrainingResult | None:
    """The orchestrator's record of a training that ran to the end in `output_dir` (e.g. before an interruption)."""
    path = Path(output_dir) / RECORD_FILE
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


def algorithm_settings(config: TrainingConfig) -> dict[str, int | float]:
    """The settings autoreward gives PPO or SAC for a training, beyond the policy, the environment, the seed and the
    device; every other setting is SB3's default. The one rule, used by the training and by the exported module."""
    if config.algo == "ppo":
        n_steps, batch_size = ppo_sizes(config.steps, config.n_envs)
        if config.on_gpu:  # a GPU learns from a few large minibatches (8 a rollout), not many of 64
            batch_size = max(batch_size, n_steps * config.n_envs // 8)
        return {"n_steps": n_steps, "batch_size": batch_size, "gamma": GAMMA}
    if config.algo == "sac":
        return {
            "learning_starts": min(10_000, max(100, config.steps // 10)),
            "buffer_size": min(1_000_000, max(10_000, config.steps)),
            "gamma": GAMMA,
        }
    raise ValueError(f"unknown algorithm {config.algo!r}: use 'ppo' or 'sac'")


def build_model(config: TrainingConfig, env, seed: int):
    from stable_baselines3 import PPO, SAC

    algorithm = {"ppo": PPO, "sac": SAC}.get(config.algo)
    if algorithm is None:
        raise ValueError(f"unknown algorithm {config.algo!r}: use 'ppo' or 'sac'")
    return algorithm("MlpPolicy", env, **algorithm_settings(config), seed=seed, device=config.device, verbose=0)


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
    """Train on the reward and leave the policy in `output_dir`; the held-out episodes are another worker's."""
    import torch
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecNormalize

    from autoreward.sim.reward_forms import FormReward
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
    previous = from_dict(TrainingResult, payload["previous"]) if payload.get("previous") else None
    start = output_dir / START_FOLDER if previous is not None else None
    reward_function = None
    if config.reward_source == "program":  # watched on every call: the first broken batch ends the training
        first_step = previous.steps if previous is not None else 0
        reward_function = training_reward(payload["code"], config, first_step, start)

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

    save_policy(model, normalizer, output_dir)  # what the evaluation worker loads: arrays, never a pickle
    report = None
    if isinstance(reward_function, FormReward):
        np.savez(output_dir / FORM_STATE_FILE, **reward_function.arrays())
        report = reward_function.report()
    result = LearnerResult(
        steps=int(model.num_timesteps), curve=tuple(callback.points), wall_seconds=wall, form_report=report
    )
    return to_dict(result)


def training_reward(code: str, config: TrainingConfig, first_step: int = 0, start: Path | None = None):
    """What a training worker pays for `code`: the reward program itself, or its form's training reward (a
    progress or latent program's, `sim/reward_forms.py`), each watched by the passive check on every call; a
    continued slice's form reward starts from what the previous slice's had learned (`start`)."""
    from autoreward.contract import reward_program
    from autoreward.contract.passive import PassiveChecker
    from autoreward.sim.reward_forms import LatentDecomposition, ProgressCounts

    form = reward_program.program_form(code)
    watched = PassiveChecker(forms.as_reward(form, reward_program.load(code)), code, first_step)
    if form == "reward":
        return watched
    if form == "progress":
        reward = ProgressCounts(watched, config.n_envs, config.progress_bins, config.progress_beta)
    else:
        reward = LatentDecomposition(watched, config.n_envs, config.latent_episodes)
    if start is not None and (start / FORM_STATE_FILE).exists():
        with np.load(start / FORM_STATE_FILE, allow_pickle=False) as stored:
            reward.load_arrays({name: stored[name] for name in stored.files})
    return reward


def _continued_model(config: TrainingConfig, env, start: Path, seed: int):
    """The model an earlier slice saved in `start`, on fresh environments, with its optimizer state and step count."""
    from stable_baselines3 import PPO, SAC

    algorithm = {"ppo": PPO, "sac": SAC}[config.algo]
    model = algorithm.load(start / "policy.zip", env=env, device=config.device)
    model.set_random_seed(seed)
    if config.algo == "sac" and (start / "replay_buffer.pkl").exists():
        model.load_replay_buffer(start / "replay_buffer.pkl")
    return model
