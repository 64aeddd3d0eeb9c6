"""A trained policy as plain arrays: what a training worker hands to the evaluation worker and to the export.

SB3 saves a model as a zip holding pickles, and its normalizer as a pickle:
loading either runs whatever code the file names. A training worker runs a
reward program, so nothing it wrote may be unpickled outside its jail. What
leaves it is arrays only:

- `policy.npz`: the policy network's `state_dict`, one array per tensor;
- `normalizer.npz` (when training normalized observations): VecNormalize's
  running mean, variance and count of the observations, its clip and epsilon.

The evaluation worker (`loop/evaluation.py`) builds the network the recipe
says (`build_policy`: SB3's own constructor, so the shapes are SB3's),
checks that every array has the name, shape and dtype the network has and
holds finite numbers (`load_weights`), and loads them; `normalizer_from`
does the same for the statistics. The exported module's `load_policy()`
reads the same two files the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autoreward.config import TrainingConfig
from autoreward.errors import WorkerFileError

POLICY_WEIGHTS = "policy.npz"
NORMALIZER_STATISTICS = "normalizer.npz"
NORMALIZER_ARRAYS = ("mean", "var", "count", "clip_obs", "epsilon")


def save_policy(model, normalizer, folder: Path) -> None:
    """Write the model's policy weights (and the normalizer's statistics, if any) into `folder` as arrays."""
    weights = {name: tensor.detach().cpu().numpy() for name, tensor in model.policy.state_dict().items()}
    np.savez(Path(folder) / POLICY_WEIGHTS, **weights)
    if normalizer is not None:
        statistics = normalizer.obs_rms
        np.savez(
            Path(folder) / NORMALIZER_STATISTICS,
            mean=np.asarray(statistics.mean, np.float64),
            var=np.asarray(statistics.var, np.float64),
            count=np.float64(statistics.count),
            clip_obs=np.float64(normalizer.clip_obs),
            epsilon=np.float64(normalizer.epsilon),
        )


def build_policy(config: TrainingConfig, env):
    """The policy network the recipe trains, untrained, on the CPU: built by SB3's own algorithm class, with
    buffers too small to cost anything (their size does not change the network)."""
    from stable_baselines3 import PPO, SAC

    if config.algo == "ppo":
        model = PPO("MlpPolicy", env, n_steps=2, batch_size=2, device="cpu", seed=0)
    elif config.algo == "sac":
        model = SAC("MlpPolicy", env, buffer_size=1, learning_starts=0, device="cpu", seed=0)
    else:
        raise ValueError(f"unknown algorithm {config.algo!r}: use 'ppo' or 'sac'")
    model.policy.set_training_mode(False)
    return model.policy


def load_weights(policy, arrays: dict[str, np.ndarray], where: str) -> None:
    """Load `arrays` into `policy`, refusing (`WorkerFileError`) any name, shape, dtype or value it does not take."""
    import torch

    expected = policy.state_dict()
    missing, unknown = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or unknown:
        said = f"lacks {missing[0]!r}" if missing else f"has {unknown[0][:80]!r}, which the network does not"
        raise WorkerFileError(f"{where} is not this recipe's policy: it {said}")
    loaded = {}
    for name, tensor in expected.items():
        array = arrays[name]
        if tuple(array.shape) != tuple(tensor.shape) or array.dtype != np.dtype(str(tensor.dtype).removeprefix("torch.")):
            raise WorkerFileError(
                f"{where}: {name} is {array.dtype}{list(array.shape)}, the network's is "
                f"{str(tensor.dtype).removeprefix('torch.')}{list(tensor.shape)}"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise WorkerFileError(f"{where}: {name} holds values that are not finite")
        loaded[name] = torch.from_numpy(np.ascontiguousarray(array))
    policy.load_state_dict(loaded, strict=True)


def normalizer_from(arrays: dict[str, np.ndarray], venv, where: str):
    """A VecNormalize over `venv` that normalizes observations as the training's did, and learns nothing more."""
    from stable_baselines3.common.vec_env import VecNormalize

    missing = [name for name in NORMALIZER_ARRAYS if name not in arrays]
    if missing:
        raise WorkerFileError(f"{where} lacks {missing[0]!r}")
    shape = venv.observation_space.shape
    mean, var = arrays["mean"], arrays["var"]
    scalars = {name: arrays[name] for name in ("count", "clip_obs", "epsilon")}
    if mean.shape != shape or var.shape != shape or any(value.shape != () for value in scalars.values()):
        raise WorkerFileError(f"{where} does not fit observations of shape {shape}")
    values = [mean, var, *scalars.values()]
    if not all(np.isfinite(v).all() for v in values) or (var < 0).any() or scalars["epsilon"] <= 0:
        raise WorkerFileError(f"{where} holds values that are not finite, or a negative variance")
    normalizer = VecNormalize(
        venv,
        training=False,
        norm_obs=True,
        norm_reward=False,
        clip_obs=float(scalars["clip_obs"]),
        epsilon=float(scalars["epsilon"]),
    )
    normalizer.obs_rms.mean = mean.astype(np.float64)
    normalizer.obs_rms.var = var.astype(np.float64)
    normalizer.obs_rms.count = float(scalars["count"])
    return normalizer
