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
            the environment's own reward in the contract):
            RewardVecEnv -> VecNormalize -> PPO.

Two things are measured, in one process, interleaved round by round:

1. training: env steps per second of `model.learn` (PPO with autoreward's own
   hyperparameters, `autoreward.training.build_model`), timed with
   time.perf_counter() around `learn` alone. A thin timer between VecNormalize
   and the vector of environments also records the time spent inside the
   environments' step: everything else (policy, PPO updates, normalization) is
   the same work on both paths, so the difference in that time is the reward
   path's cost, and is far less noisy than the difference of two `learn` times;
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
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
import stable_baselines3
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper, VecNormalize

# Measure the autoreward of this checkout, not a copy installed elsewhere (an editable install of another
# worktree would otherwise win: `python bench/...` puts bench/, not the checkout, first on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autoreward import reward_program  # noqa: E402
from autoreward.tasks import find_task, make_env  # noqa: E402
from autoreward.training import TrainingConfig, _ppo_sizes, build_model  # noqa: E402
from autoreward.vec_env import make_vec_env  # noqa: E402


@dataclass
class Args:
    task: str = field(default="half_cheetah_forward", metadata={"help": "task id (see `autoreward tasks`) or a task .toml file"})
    steps: int = field(default=50_000, metadata={"help": "env steps per timed training run (all environments together)"})
    repeats: int = field(default=3, metadata={"help": "timed rounds; each round trains once on each path"})
    n_envs: int = field(default=4, metadata={"help": "environments stepped together"})
    seed: int = field(default=0, metadata={"help": "seed of the environments and of PPO, the same on both paths"})
    raw_steps: int = field(default=40_000, metadata={"help": "env steps per timed raw-stepping run"})
    raw_repeats: int = field(default=7, metadata={"help": "timed raw-stepping rounds (a few seconds each, so more of them)"})
    threshold: float = field(default=0.95, metadata={"help": "the contract path must keep at least this fraction of native training throughput"})
    quick: bool = field(default=False, metadata={"help": "smoke run: 5_000 training steps, 8_000 raw steps, 1 round of each; too short to judge the ratio"})


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action="store_true", help=f.metadata["help"])
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default, help=f"{f.metadata['help']} (default: {f.default})")
    args = Args(**vars(parser.parse_args()))
    if args.quick:
        args.steps, args.raw_steps, args.repeats, args.raw_repeats = 5_000, 8_000, 1, 1
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
class Run:
    steps: int  # env steps done, all environments together
    seconds: float  # the whole timed loop (model.learn, or the stepping loop)
    env_seconds: float  # the part of it spent inside the vector of environments' step
    episodes: int  # episodes that ended


def train_once(path: str, steps: int) -> Run:
    """Build a fresh env and PPO, train `steps` env steps, time model.learn."""
    timer = TimeEnvSteps(make_raw_env(path))
    env = VecNormalize(timer, gamma=0.99)
    model = build_model(config, env, args.seed)  # n_steps from the timed budget, also in the warm-up
    counter = CountEpisodes()
    started = time.perf_counter()
    model.learn(total_timesteps=steps, callback=counter)
    seconds = time.perf_counter() - started
    env.close()
    return Run(int(model.num_timesteps), seconds, timer.seconds, counter.episodes)


def step_once(path: str, steps: int) -> Run:
    """Step a fresh env with random actions (the same ones on both paths), no learning."""
    env = make_raw_env(path)
    env.reset()
    batches = max(1, steps // args.n_envs)
    rng = np.random.default_rng(args.seed)
    low, high = env.action_space.low, env.action_space.high
    actions = rng.uniform(low, high, size=(batches, args.n_envs, *low.shape)).astype(np.float32)
    episodes = 0
    started = time.perf_counter()
    for batch in actions:
        _, _, dones, _ = env.step(batch)
        episodes += int(np.count_nonzero(dones))
    seconds = time.perf_counter() - started
    env.close()
    return Run(batches * args.n_envs, seconds, seconds, episodes)


def interleaved(measure, steps: int, repeats: int, label: str) -> dict[str, list[Run]]:
    """`repeats` timed rounds of each path, after one discarded warm-up round.

    Rounds alternate which path goes first (native, contract | contract, native | ...)
    so that a slow drift of the machine does not favour either path.
    """
    for path in PATHS:  # warm-up: imports, MuJoCo compilation, torch's first calls
        measure(path, max(steps // 10, 2 * n_steps * args.n_envs))
    runs: dict[str, list[Run]] = {path: [] for path in PATHS}
    for round_index in range(repeats):
        order = PATHS if round_index % 2 == 0 else PATHS[::-1]
        for path in order:
            run = measure(path, steps)
            runs[path].append(run)
            print(
                f"  {label} round {round_index + 1}/{repeats} {path:>8}: {run.steps} steps in {run.seconds:6.2f} s "
                f"= {run.steps / run.seconds:6.0f} steps/s; in env step {run.env_seconds / run.steps * 1e6:6.1f} us/step; "
                f"{run.episodes} episodes ended",
                flush=True,
            )
    return runs


def summarise(runs: dict[str, list[Run]]) -> dict[str, float]:
    rate = {path: [r.steps / r.seconds for r in runs[path]] for path in PATHS}
    env_us = {path: statistics.median(r.env_seconds / r.steps * 1e6 for r in runs[path]) for path in PATHS}
    native, contract = statistics.median(rate["native"]), statistics.median(rate["contract"])
    per_round = [c / n for n, c in zip(rate["native"], rate["contract"])]
    extra_us = env_us["contract"] - env_us["native"]
    return {
        "native": native,
        "contract": contract,
        "ratio_of_medians": contract / native,
        "median_ratio": statistics.median(per_round),
        "min_ratio": min(per_round),
        "max_ratio": max(per_round),
        "env_us_native": env_us["native"],
        "env_us_contract": env_us["contract"],
        "extra_us": extra_us,
        # What the ratio would be if the reward path's extra time in env step were the only difference.
        "ratio_from_env_time": (1e6 / native) / (1e6 / native + extra_us),
    }


print(f"task {task.id} ({task.env_id}), reward program {task.human_reward}")
print(f"autoreward measured: {Path(reward_program.__file__).parent}")
print(f"n_envs={args.n_envs} seed={args.seed} PPO n_steps={n_steps} batch_size={batch_size} torch threads={torch.get_num_threads()}")
print(
    f"training: {args.steps} steps per run, {args.repeats} round(s); raw stepping: {args.raw_steps} steps per run, "
    f"{args.raw_repeats} round(s); each after one discarded warm-up"
)
print(
    f"python {platform.python_version()}, mujoco {mujoco.__version__}, gymnasium {gymnasium.__version__}, "
    f"stable-baselines3 {stable_baselines3.__version__}, torch {torch.__version__}, numpy {np.__version__}",
    flush=True,
)

print("raw stepping (random actions, no learning):", flush=True)
raw = summarise(interleaved(step_once, args.raw_steps, args.raw_repeats, "raw"))
print("training (VecNormalize + PPO, model.learn):", flush=True)
training = summarise(interleaved(train_once, args.steps, args.repeats, "train"))

print()
print(
    f"{'benchmark':<14}{'native steps/s':>16}{'contract steps/s':>18}{'ratio':>8}{'per-round ratios':>22}"
    f"{'env us/step native':>20}{'contract':>10}{'extra':>8}"
)
for name, result in (("raw stepping", raw), ("training", training)):
    spread = f"{result['median_ratio']:.3f} [{result['min_ratio']:.3f}-{result['max_ratio']:.3f}]"
    print(
        f"{name:<14}{result['native']:>16.0f}{result['contract']:>18.0f}{result['ratio_of_medians']:>8.3f}{spread:>22}"
        f"{result['env_us_native']:>20.1f}{result['env_us_contract']:>10.1f}{result['extra_us']:>8.1f}"
    )
print("ratio: median contract steps/s / median native steps/s. per-round ratios: median [min-max] of contract/native")
print("in each round. env us/step: median time inside the vector of environments' step per env step; extra: contract - native.")
print()
print(f"ratio (contract / native raw stepping throughput): {raw['ratio_of_medians']:.3f}")
print(
    f"ratio implied by the extra env-step time alone ({training['extra_us']:.1f} us on top of "
    f"{1e6 / training['native']:.0f} us per native training step): {training['ratio_from_env_time']:.3f}"
)
print(f"ratio (contract / native training throughput): {training['ratio_of_medians']:.3f}")
# The requirement is judged on the measured training throughput. It is met only if the ratio of medians and every
# round say so, and missed only if the ratio of medians and every round say so. Rounds on both sides of the
# threshold mean this run cannot tell (the machine's noise is larger than the effect), and the script says so.
ratios = (training["ratio_of_medians"], training["min_ratio"], training["max_ratio"])
if min(ratios) >= args.threshold:
    verdict = "MEETS"
elif max(ratios) < args.threshold:
    verdict = "DOES NOT MEET"
else:
    verdict = "CANNOT TELL whether it meets"
print(
    f"{verdict} the requirement (contract keeps >= {args.threshold:.2f} of native training throughput): "
    f"ratio of medians {training['ratio_of_medians']:.3f}, per-round ratios "
    f"{training['min_ratio']:.3f} to {training['max_ratio']:.3f}"
)
if args.quick:
    print("(--quick is a smoke run: one short round is too noisy to judge the ratio; run without --quick to measure)")
