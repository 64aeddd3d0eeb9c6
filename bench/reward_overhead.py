"""How much throughput does autoreward's reward path cost, next to the environment's own reward?

Two paths train the same task with the same algorithm, seed, number of
environments and number of steps; only the reward path differs:

- native:   SB3 on plain gymnasium environments, rewarded by the environment
            itself: DummyVecEnv -> VecNormalize -> PPO.
- contract: autoreward's path: every environment wrapped in StateCapture, the
            batch in RewardVecEnv, which builds `state` / `next_state`, runs
            the task's fitness and calls a reward program (here the task's
            `human_reward`, a re-implementation of the environment's own
            reward in the contract): RewardVecEnv -> VecNormalize -> PPO.

Two things are measured, in one process, interleaved round by round:

1. training: env steps per second of `model.learn` (PPO with autoreward's own
   hyperparameters, `autoreward.training.build_model`), timed with
   time.perf_counter() around `learn` alone;
2. raw stepping: env steps per second of stepping the vector of environments
   with random actions, no learning. This isolates the per-step cost of the
   reward path; it is a larger fraction here than in training, where the
   policy's forward and backward passes dominate.

Usage:
    python bench/reward_overhead.py                 # HalfCheetah, 50k steps, 3 rounds
    python bench/reward_overhead.py --quick         # smoke run: 5k steps, 1 round
    python bench/reward_overhead.py --task hopper_forward
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from autoreward import reward_program
from autoreward.tasks import find_task, make_env
from autoreward.training import TrainingConfig, _ppo_sizes, build_model
from autoreward.vec_env import make_vec_env


@dataclass
class Args:
    task: str = field(default="half_cheetah_forward", metadata={"help": "task id (see `autoreward tasks`) or a task .toml file"})
    steps: int = field(default=50_000, metadata={"help": "env steps per timed training run (all environments together)"})
    repeats: int = field(default=3, metadata={"help": "timed rounds; each round trains once on each path"})
    n_envs: int = field(default=4, metadata={"help": "environments stepped together"})
    seed: int = field(default=0, metadata={"help": "seed of the environments and of PPO, the same on both paths"})
    raw_steps: int = field(default=40_000, metadata={"help": "env steps per timed raw-stepping run"})
    threshold: float = field(default=0.95, metadata={"help": "the contract path must keep at least this fraction of native training throughput"})
    quick: bool = field(default=False, metadata={"help": "smoke run: 5_000 training steps, 8_000 raw steps, 1 round"})


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action="store_true", help=f.metadata["help"])
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            parser.add_argument(flag, type=kind, default=f.default, help=f"{f.metadata['help']} (default: {f.default})")
    args = Args(**vars(parser.parse_args()))
    if args.quick:
        args.steps, args.raw_steps, args.repeats = 5_000, 8_000, 1
    return args


args = parse_args()
torch.set_num_threads(1)  # as autoreward's training worker does

task = find_task(args.task)
if task.human_reward is None:
    raise SystemExit(f"task {task.id} has no human_reward: the contract path needs a reward program to call")
reward_function = reward_program.load(open(task.human_reward).read())
# PPO exactly as autoreward trains it: build_model picks n_steps and batch_size from the budget.
config = TrainingConfig(reward_source="program", algo="ppo", steps=args.steps, seed=args.seed, n_envs=args.n_envs)
n_steps, batch_size = _ppo_sizes(config.steps, config.n_envs)
PATHS = ("native", "contract")


def make_raw_env(path: str):
    """The vector of environments of one path, before normalization."""
    if path == "native":
        # make_env is gymnasium.make(task.env_id, **task.env_kwargs): the same environment
        # the contract path steps (for half_cheetah_forward, gym.make("HalfCheetah-v5")).
        env = DummyVecEnv([lambda: make_env(task) for _ in range(args.n_envs)])
        env.seed(args.seed)
        return env
    return make_vec_env(task, args.n_envs, args.seed, "program", reward_function)


def train_once(path: str, steps: int) -> tuple[int, float]:
    """Build a fresh env and PPO, train `steps` env steps; return (steps done, seconds in learn)."""
    env = VecNormalize(make_raw_env(path), gamma=0.99)
    model = build_model(config, env, args.seed)  # n_steps from the timed budget, also in the warm-up
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - started
    env.close()
    return int(model.num_timesteps), seconds


def step_once(path: str, steps: int) -> tuple[int, float]:
    """Step a fresh env with random actions (the same ones on both paths); return (env steps, seconds)."""
    env = make_raw_env(path)
    env.reset()
    batches = max(1, steps // args.n_envs)
    rng = np.random.default_rng(args.seed)
    low, high = env.action_space.low, env.action_space.high
    actions = rng.uniform(low, high, size=(batches, args.n_envs, *low.shape)).astype(np.float32)
    started = time.perf_counter()
    for batch in actions:
        env.step(batch)
    seconds = time.perf_counter() - started
    env.close()
    return batches * args.n_envs, seconds


def interleaved(measure, steps: int, label: str) -> dict[str, list[float]]:
    """Steps/s of each path, `args.repeats` rounds, after one discarded warm-up round.

    Rounds alternate which path goes first (native, contract | contract, native | ...)
    so that a slow drift of the machine does not favour either path.
    """
    for path in PATHS:  # warm-up: imports, MuJoCo compilation, torch's first calls
        measure(path, max(steps // 10, 2 * n_steps * args.n_envs))
    rates: dict[str, list[float]] = {path: [] for path in PATHS}
    for round_index in range(args.repeats):
        order = PATHS if round_index % 2 == 0 else PATHS[::-1]
        for path in order:
            done, seconds = measure(path, steps)
            rates[path].append(done / seconds)
            print(f"  {label} round {round_index + 1}/{args.repeats} {path:>8}: {done} steps in {seconds:6.2f} s = {done / seconds:8.0f} steps/s", flush=True)
    return rates


def summarise(rates: dict[str, list[float]]) -> dict[str, float]:
    native, contract = statistics.median(rates["native"]), statistics.median(rates["contract"])
    per_round = [c / n for n, c in zip(rates["native"], rates["contract"])]
    return {
        "native": native,
        "contract": contract,
        "ratio_of_medians": contract / native,
        "median_ratio": statistics.median(per_round),
        "min_ratio": min(per_round),
        "max_ratio": max(per_round),
        # The reward path's extra cost per env step, from the median rates.
        "overhead_us": (1.0 / contract - 1.0 / native) * 1e6,
    }


print(f"task {task.id} ({task.env_id}), reward program {task.human_reward}")
print(f"n_envs={args.n_envs} seed={args.seed} PPO n_steps={n_steps} batch_size={batch_size} torch threads={torch.get_num_threads()}")
print(f"training: {args.steps} steps per run; raw stepping: {args.raw_steps} steps per run; {args.repeats} round(s) after one warm-up")
print(f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}", flush=True)

print("raw stepping (random actions, no learning):", flush=True)
raw = summarise(interleaved(step_once, args.raw_steps, "raw"))
print("training (VecNormalize + PPO, model.learn):", flush=True)
training = summarise(interleaved(train_once, args.steps, "train"))

print()
print(f"{'benchmark':<14}{'native steps/s':>16}{'contract steps/s':>18}{'ratio':>8}{'per-round ratios':>22}{'extra us/step':>15}")
for name, result in (("raw stepping", raw), ("training", training)):
    spread = f"{result['median_ratio']:.3f} [{result['min_ratio']:.3f}-{result['max_ratio']:.3f}]"
    print(
        f"{name:<14}{result['native']:>16.0f}{result['contract']:>18.0f}{result['ratio_of_medians']:>8.3f}"
        f"{spread:>22}{result['overhead_us']:>15.1f}"
    )
print("(ratio = median contract steps/s / median native steps/s; per-round ratios: median [min-max] of contract/native in each round)")
print()
print(f"ratio (contract / native raw stepping throughput): {raw['ratio_of_medians']:.3f}")
print(f"ratio (contract / native training throughput): {training['ratio_of_medians']:.3f}")
# The requirement is judged on both summaries of the training ratio: it passes only if both hold.
worst = min(training["ratio_of_medians"], training["median_ratio"])
verdict = "MEETS" if worst >= args.threshold else "DOES NOT MEET"
print(
    f"{verdict} the requirement: contract keeps {worst:.3f} of native training throughput "
    f"(lower of ratio of medians and median per-round ratio; required >= {args.threshold:.2f})"
)
