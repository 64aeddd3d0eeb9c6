"""The held-out evaluation as it ran before the split, for `evaluation_split.py` to time: a bench-only job.

Inside one worker, the trained model (SB3's own files, which this bench wrote
itself) plays the held-out episodes with the reward program computed in the
same process, as the training worker did after training until the evaluation
moved to a worker of its own. Never started by autoreward.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def run_single_worker_evaluation(payload: dict[str, Any], output_dir: Path, channel) -> dict:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from autoreward.config import Task, TrainingConfig
    from autoreward.contract import reward_program
    from autoreward.contract.passive import PassiveChecker
    from autoreward.loop.evaluation import EVALUATION_SEED_BASE, TRANSITIONS_FILE, evaluate
    from autoreward.serialize import from_dict
    from autoreward.sim.vec_env import make_vec_env

    torch.set_num_threads(1)
    task = from_dict(Task, payload["task"])
    config = from_dict(TrainingConfig, payload["config"])
    # What the training worker had in hand when it finished: the model and its normalizer, in memory.
    model = PPO.load(output_dir / "policy.zip", device="cpu")
    reward = PassiveChecker(reward_program.load(payload["code"]), payload["code"])
    env = make_vec_env(task, 1, EVALUATION_SEED_BASE, "program", reward, copy_all_fields=True)
    normalizer = VecNormalize.load(str(output_dir / "vecnormalize.pkl"), env)
    started = time.monotonic()
    evaluation = evaluate(model, task, config, env, normalizer, output_dir / TRANSITIONS_FILE)
    return {"seconds": time.monotonic() - started, "fitness_mean": evaluation.fitness_mean}
