"""Run folders: where each command writes what it made, as files a person can open.

A training run is `runs/<task>__train__s<seed>__<time>/` holding `config.json`,
the reward program as `reward.py`, its `check.json`, the training's folder
`training/` (`training.json`, and the folders of its three workers: `learner/`,
`evaluation/`, `scoring/`; see `loop/training.py`) and `result.json`. Baselines are cached under `runs/baselines/`, one folder per
task, algorithm, budget and seed (and a digest of the task's definition and
the rest of the training settings), so every later run with the same budget
reuses them, and none after the task file changed.
"""

from __future__ import annotations

import time
from pathlib import Path

DEFAULT_RUNS_DIR = Path("runs")


def new_run_dir(root: Path, task_id: str, kind: str, seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{task_id}__{kind}__s{seed}__{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / f"{task_id}__{kind}__s{seed}__{stamp}-{suffix}"
    path.mkdir(parents=True)
    return path


def baseline_dir(root: Path, task_id: str, algo: str, steps: int, seed: int, n_envs: int, fingerprint: str) -> Path:
    """`fingerprint`: a digest of everything else the baselines depend on (baselines.baseline_fingerprint)."""
    return Path(root) / "baselines" / f"{task_id}__{algo}__{steps}steps__{n_envs}envs__s{seed}__{fingerprint}"
