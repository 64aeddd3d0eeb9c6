"""What the trust boundary costs: a training's held-out evaluation in workers of its own, against one worker.

Since the split, `train` runs three jailed workers: the training, then the
held-out evaluation (no reward program: it loads the policy's arrays into the
recipe's network) and the scoring of the evaluation's episodes with the reward
program. Before, the training worker played the held-out episodes itself, with
the reward in the same process. This trains one policy (HalfCheetah, its human
reward, 300 000 steps by default) through `train`, then times, side by side
and alternating `--repeats` times on that same policy:

- single worker: the held-out episodes played as before, in a worker that
  already holds the model (timed inside it, as the training worker's own
  evaluation was: no process start);
- split: `evaluate_policy` and `with_reward_returns`, as `train` calls them,
  timed from the orchestrator (two worker starts, the copies through the
  reader of worker files, the weights loaded into a new network).

It prints each way's median, their difference per candidate, and that
difference against the training's own wall time. Videos are off in both: a
video costs the same wherever it is made.

Usage:
    python bench/evaluation_split.py                  # HalfCheetah, 300 000 steps, 3 repeats
    python bench/evaluation_split.py --steps 20000    # a quick look
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dataclass_args import parse_dataclass  # bench/, first on sys.path when a script runs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autoreward.config import TrainingConfig, WorkerLimits  # noqa: E402
from autoreward.loop.evaluation import EVALUATION_FOLDER, evaluate_policy  # noqa: E402
from autoreward.loop.reward_returns import SCORING_FOLDER, with_reward_returns  # noqa: E402
from autoreward.loop.runner import Runner
from autoreward.loop.training import LEARNER_FOLDER, train  # noqa: E402
from autoreward.sandbox.executor import LocalExecutor  # noqa: E402
from autoreward.sandbox.jail import SETTING_VARIABLE, Jail  # noqa: E402
from autoreward.serialize import to_dict  # noqa: E402
from autoreward.task.files import find_task  # noqa: E402

BENCH = Path(__file__).resolve().parent


@dataclass
class Args:
    task: str = field(default="half_cheetah_forward", metadata={"help": "task id (its human_reward is trained)"})
    steps: int = field(default=300_000, metadata={"help": "env steps of the training"})
    n_envs: int = field(default=4, metadata={"help": "environments of the training"})
    eval_episodes: int = field(default=10, metadata={"help": "held-out episodes"})
    repeats: int = field(default=3, metadata={"help": "timings of each way, alternating"})


def main() -> None:
    args = parse_dataclass(Args, __doc__.split("\n")[0])
    task = find_task(args.task)
    code = Path(task.human_reward).read_text()
    config = TrainingConfig(steps=args.steps, n_envs=args.n_envs, eval_episodes=args.eval_episodes, video=False)
    jail = Jail.from_setting(os.environ.get(SETTING_VARIABLE)).showing([BENCH])
    executor = LocalExecutor()
    folder = Path(tempfile.mkdtemp(prefix="autoreward-bench-split-"))
    print(f"{platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}, jail {jail.active}")
    print(f"task {task.id}: {args.steps:,} steps on {args.n_envs} envs, {args.eval_episodes} held-out episodes")
    started = time.monotonic()
    result = train(task, config, folder / "training", code, executor=executor, runner=Runner.connect(jail=jail))
    whole = time.monotonic() - started
    print(
        f"train(): {whole:.1f} s in all: training {result.wall_seconds:.1f} s, "
        f"evaluation and scoring {result.evaluation_seconds:.1f} s; task score {result.evaluation.fitness_mean:.4g}"
    )
    learner = folder / "training" / LEARNER_FOLDER
    single, split = [], []
    for repeat in range(args.repeats):
        single.append(_single_worker(task, config, code, learner, folder / f"single_{repeat}", jail, executor))
        split.append(_split(task, config, code, learner, folder / f"split_{repeat}", jail, executor))
        print(f"  repeat {repeat + 1}: single worker {single[-1]:.2f} s, split {split[-1]:.2f} s")
    one, two = statistics.median(single), statistics.median(split)
    print(f"single worker: median {one:.2f} s   split: median {two:.2f} s   ratio {two / one:.2f}")
    print(
        f"the split adds {two - one:.2f} s per candidate, {100 * (two - one) / result.wall_seconds:.1f}% "
        f"of its {result.wall_seconds:.0f} s of training"
    )
    shutil.rmtree(folder, ignore_errors=True)


def _single_worker(task, config, code, learner: Path, folder: Path, jail, executor) -> float:
    folder.mkdir(parents=True)
    for name in ("policy.zip", "vecnormalize.pkl"):
        shutil.copy(learner / name, folder / name)
    payload = {"task": to_dict(task), "config": to_dict(config), "code": code}
    limits = WorkerLimits(wall_seconds=1800.0, idle_seconds=600.0)
    kind = "bench.single_worker_evaluation:run_single_worker_evaluation"
    outcome = executor.run(kind, payload, folder, limits, None, jail)
    if outcome.status != "ok":
        raise SystemExit(f"the single-worker evaluation failed: {outcome.message}\n{outcome.log_tail}")
    return outcome.result["seconds"]


def _split(task, config, code, learner: Path, folder: Path, jail, executor) -> float:
    started = time.monotonic()
    workers = Runner.connect(executor, jail=jail)
    held_out = evaluate_policy(task, config, learner, folder / EVALUATION_FOLDER, workers)
    with_reward_returns(task, code, held_out.evaluation, folder / EVALUATION_FOLDER, folder / SCORING_FOLDER, workers)
    return time.monotonic() - started


if __name__ == "__main__":
    main()
