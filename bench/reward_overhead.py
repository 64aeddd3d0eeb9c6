"""How much throughput does autoreward's reward path cost, next to the environment's own reward?

Two paths train the same task with the same algorithm, seed, number of
environments and number of steps; only the reward path differs:

- native:   SB3 on plain gymnasium environments, rewarded by the environment
            itself: DummyVecEnv -> VecNormalize -> PPO.
- contract: autoreward's path: the environments in a CapturingVecEnv (a
            DummyVecEnv that copies each simulation into a batch of raw
            arrays as it steps), the batch in RewardVecEnv, which builds
            `state` / `next_state`, runs the task's fitness and calls a reward
            program (here the task's `human_reward`, a re-implementation of
            the environment's own reward in the contract, watched by the
            passive check as in training; its State arrays are read-only views):
            RewardVecEnv -> VecNormalize -> PPO.

Two things are measured, in one process, with the two paths interleaved in
short paired slices, so that the machine's drift (a noisy neighbour, a slow
spell of the hypervisor) falls on both paths of a pair alike:

1. training: one PPO model per path (autoreward's own hyperparameters,
   `autoreward.loop.training.build_model`), built once; then slice after slice,
   each model's `learn` runs one PPO iteration (a rollout of n_steps x n_envs
   env steps and its update), alternating which path goes first. Each slice is
   timed with time.perf_counter(); a thin timer between VecNormalize and the
   vector of environments also records the time spent inside the
   environments' step (everything else is the same work on both paths);
2. raw stepping: the same with random actions and no learning, in chunks.

The figure judged is the median over pairs of (native seconds / contract
seconds), i.e. the contract path's throughput as a fraction of native, with a
distribution-free confidence interval for that median (order statistics of
the pairs). The verdict is MEETS when the whole interval is at or above the
threshold, DOES NOT MEET when it is all below, CANNOT TELL otherwise.

Usage:
    python bench/reward_overhead.py                 # HalfCheetah, 40 paired PPO iterations
    python bench/reward_overhead.py --quick         # smoke run: a few pairs
    python bench/reward_overhead.py --task hopper_forward
"""

from __future__ import annotations

import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
import stable_baselines3
import torch
from dataclass_args import parse_dataclass  # bench/, first on sys.path when a script runs
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper, VecNormalize

# Measure the autoreward of this checkout, not a copy installed elsewhere (an editable install of another
# worktree would otherwise win: `python bench/...` puts bench/, not the checkout, first on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autoreward.config import TrainingConfig  # noqa: E402
from autoreward.contract import reward_program  # noqa: E402
from autoreward.contract.passive import PassiveChecker  # noqa: E402
from autoreward.loop.training import build_model, ppo_sizes  # noqa: E402
from autoreward.sim.vec_env import make_vec_env  # noqa: E402
from autoreward.task.files import find_task, make_env  # noqa: E402


@dataclass
class Args:
    task: str = field(
        default="half_cheetah_forward", metadata={"help": "task id (see `autoreward tasks`) or a task .toml file"}
    )
    pairs: int = field(default=40, metadata={"help": "timed training pairs; each is one PPO iteration on each path"})
    n_envs: int = field(default=4, metadata={"help": "environments stepped together"})
    seed: int = field(default=0, metadata={"help": "seed of the environments and of PPO, the same on both paths"})
    rollout: int = field(
        default=1024, metadata={"help": "PPO n_steps per environment (one iteration = rollout x n_envs env steps)"}
    )
    raw_pairs: int = field(default=40, metadata={"help": "timed raw-stepping pairs"})
    raw_chunk: int = field(default=4_000, metadata={"help": "env steps per raw-stepping slice"})
    threshold: float = field(
        default=0.95,
        metadata={"help": "the contract path must keep at least this fraction of native training throughput"},
    )
    confidence: float = field(
        default=0.95, metadata={"help": "confidence of the interval around the median paired ratio"}
    )
    quick: bool = field(default=False, metadata={"help": "smoke run: 3 pairs of each; too few to judge the ratio"})


def parse_args() -> Args:
    args = parse_dataclass(Args, __doc__.split("\n")[0])
    if args.quick:
        args.pairs, args.raw_pairs = 3, 3
    return args


args = parse_args()
torch.set_num_threads(1)  # as autoreward's training worker does

task = find_task(args.task)
if task.human_reward is None:
    raise SystemExit(f"task {task.id} has no human_reward: the contract path needs a reward program to call")
# As training calls it: loaded, and watched by the passive check (finite values of shape (N,) every batch).
human_code = open(task.human_reward).read()
reward_function = PassiveChecker(reward_program.load(human_code), human_code)
iteration_steps = args.rollout * args.n_envs
# PPO as autoreward trains it (build_model), with a budget whose n_steps is the chosen rollout.
config = TrainingConfig(
    reward_source="program", algo="ppo", steps=args.rollout * args.n_envs * 8, seed=args.seed, n_envs=args.n_envs
)
n_steps, batch_size = ppo_sizes(config.steps, config.n_envs)
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


class CountEpisodes(BaseCallback):
    """Counts finished episodes. Where episodes can terminate early (Hopper, Walker...), the two
    paths learn slightly different policies (the reward program matches the environment's reward
    only to float rounding), so they may reset a different number of times: this shows it."""

    def __init__(self):
        super().__init__()
        self.episodes = 0

    def _on_step(self) -> bool:
        self.episodes += int(np.count_nonzero(self.locals["dones"]))
        return True


class TimeEnvSteps(VecEnvWrapper):
    """Adds up the seconds spent in the wrapped vector of environments' step (step_async to step_wait)."""

    def __init__(self, venv):
        super().__init__(venv)
        self.seconds = 0.0
        self._started = 0.0

    def reset(self):
        return self.venv.reset()

    def step_async(self, actions):
        self._started = time.perf_counter()
        self.venv.step_async(actions)

    def step_wait(self):
        result = self.venv.step_wait()
        self.seconds += time.perf_counter() - self._started
        return result


@dataclass
class Slice:
    steps: int  # env steps done, all environments together
    seconds: float  # the whole timed slice (model.learn, or the stepping loop)
    env_seconds: float  # the part of it spent inside the vector of environments' step
    episodes: int  # episodes that ended


class Trainer:
    """One path's PPO, built once; each `slice` runs one more PPO iteration and times it."""

    def __init__(self, path: str):
        self.timer = TimeEnvSteps(make_raw_env(path))
        self.model = build_model(replace(config, steps=config.steps), VecNormalize(self.timer, gamma=0.99), args.seed)
        self.counter = CountEpisodes()
        self.model.learn(total_timesteps=iteration_steps, callback=self.counter)  # warm-up: first calls, compilation

    def slice(self) -> Slice:
        env_before, episodes_before, steps_before = self.timer.seconds, self.counter.episodes, self.model.num_timesteps
        started = time.perf_counter()
        self.model.learn(total_timesteps=iteration_steps, callback=self.counter, reset_num_timesteps=False)
        seconds = time.perf_counter() - started
        return Slice(
            self.model.num_timesteps - steps_before,
            seconds,
            self.timer.seconds - env_before,
            self.counter.episodes - episodes_before,
        )


class Stepper:
    """One path's vector of environments, stepped with random actions (the same on both paths), no learning."""

    def __init__(self, path: str):
        self.env = make_raw_env(path)
        self.env.reset()
        rng = np.random.default_rng(args.seed)
        low, high = self.env.action_space.low, self.env.action_space.high
        self.actions = rng.uniform(low, high, size=(args.raw_chunk // args.n_envs, args.n_envs, *low.shape)).astype(
            np.float32
        )
        self.slice()  # warm-up

    def slice(self) -> Slice:
        episodes = 0
        started = time.perf_counter()
        for batch in self.actions:
            _, _, dones, _ = self.env.step(batch)
            episodes += int(np.count_nonzero(dones))
        seconds = time.perf_counter() - started
        return Slice(len(self.actions) * args.n_envs, seconds, seconds, episodes)


def paired(runners: dict, pairs: int, label: str) -> list[tuple[Slice, Slice]]:
    """`pairs` slices of each path, alternating which goes first (native, contract | contract, native | ...)."""
    result = []
    for index in range(pairs):
        order = PATHS if index % 2 == 0 else PATHS[::-1]
        slices = {path: runners[path].slice() for path in order}
        native, contract = slices["native"], slices["contract"]
        result.append((native, contract))
        print(
            f"  {label} pair {index + 1:>2}/{pairs}: native {native.steps / native.seconds:7.0f} steps/s, "
            f"contract {contract.steps / contract.seconds:7.0f} steps/s, ratio {native.seconds / contract.seconds:.3f}; "
            f"env us/step {native.env_seconds / native.steps * 1e6:6.1f} / {contract.env_seconds / contract.steps * 1e6:6.1f}",
            flush=True,
        )
    return result


def median_interval(values: list[float], confidence: float) -> tuple[float, float, float]:
    """A distribution-free interval for the median and its coverage: order statistics k and n-1-k (from 0),
    the narrowest whose coverage 1 - 2 P(B <= k), B ~ Binomial(n, 1/2), is still >= `confidence`.
    With too few values even (min, max) covers less than asked; its coverage says so."""
    ordered, n = sorted(values), len(values)
    coverage = lambda k: 1 - 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n  # noqa: E731
    k = 0
    while k + 1 < n - 2 - k and coverage(k + 1) >= confidence:
        k += 1
    return ordered[k], ordered[n - 1 - k], coverage(k)


def summarise(pairs: list[tuple[Slice, Slice]]) -> dict[str, float]:
    ratios = [native.seconds / contract.seconds for native, contract in pairs]  # contract throughput / native
    extra_us = [(c.env_seconds / c.steps - n.env_seconds / n.steps) * 1e6 for n, c in pairs]
    native_rate = sum(n.steps for n, _ in pairs) / sum(n.seconds for n, _ in pairs)
    contract_rate = sum(c.steps for _, c in pairs) / sum(c.seconds for _, c in pairs)
    low, high, coverage = median_interval(ratios, args.confidence)
    return {
        "native": native_rate,
        "contract": contract_rate,
        "ratio": statistics.median(ratios),
        "low": low,
        "high": high,
        "coverage": coverage,
        "extra_us": statistics.median(extra_us),
        "native_episodes": sum(n.episodes for n, _ in pairs),
        "contract_episodes": sum(c.episodes for _, c in pairs),
    }


print(f"task {task.id} ({task.env_id}), reward program {task.human_reward}")
print(f"autoreward measured: {Path(reward_program.__file__).parent}")
print(
    f"n_envs={args.n_envs} seed={args.seed} PPO n_steps={n_steps} batch_size={batch_size} torch threads={torch.get_num_threads()}"
)
print(
    f"training: {args.pairs} pairs of one PPO iteration ({iteration_steps} env steps) per path; raw stepping: "
    f"{args.raw_pairs} pairs of {args.raw_chunk} steps; each path warmed up first"
)
print(
    f"python {platform.python_version()}, mujoco {mujoco.__version__}, gymnasium {gymnasium.__version__}, "
    f"stable-baselines3 {stable_baselines3.__version__}, torch {torch.__version__}, numpy {np.__version__}",
    flush=True,
)
if n_steps != args.rollout:
    raise SystemExit(
        f"build_model chose n_steps={n_steps}, not the --rollout {args.rollout}: pick a power of two <= 2048"
    )

print("raw stepping (random actions, no learning):", flush=True)
raw = summarise(paired({path: Stepper(path) for path in PATHS}, args.raw_pairs, "raw"))
print("training (VecNormalize + PPO, model.learn, one iteration per slice):", flush=True)
training = summarise(paired({path: Trainer(path) for path in PATHS}, args.pairs, "train"))

interval = "interval (coverage)"
print()
print(
    f"{'benchmark':<14}{'native steps/s':>16}{'contract steps/s':>18}{'median ratio':>14}{interval:>24}{'extra us/step':>14}{'episodes n/c':>16}"
)
for name, result in (("raw stepping", raw), ("training", training)):
    print(
        f"{name:<14}{result['native']:>16.0f}{result['contract']:>18.0f}{result['ratio']:>14.3f}"
        f"{result['low']:>9.3f} to {result['high']:.3f} ({result['coverage']:.0%}){result['extra_us']:>9.1f}"
        f"{result['native_episodes']:>9}/{result['contract_episodes']}"
    )
print(
    "steps/s: all slices of a path. median ratio: median over pairs of native seconds / contract seconds (the contract"
)
print(
    "path's throughput as a fraction of native); extra us/step: median over pairs of the difference in time inside env step."
)
print()
if training["coverage"] < args.confidence:
    verdict = "CANNOT TELL (too few pairs for the interval) whether it meets"
elif training["low"] >= args.threshold:
    verdict = "MEETS"
elif training["high"] < args.threshold:
    verdict = "DOES NOT MEET"
else:
    verdict = "CANNOT TELL whether it meets"
print(
    f"{verdict} the requirement (contract keeps >= {args.threshold:.2f} of native training throughput): "
    f"median paired ratio {training['ratio']:.3f}, interval {training['low']:.3f} to {training['high']:.3f} "
    f"(covers the median with probability {training['coverage']:.1%})"
)
if args.quick:
    print("(--quick is a smoke run: three pairs are too few to judge the ratio; run without --quick to measure)")
