"""Raw environment steps/s and PPO training steps/s of autoreward's simulators, side by side in one run.

Simulators (`autoreward.sim.vec_env.make_vec_env(..., simulator=...)`), each with
the task's `human_reward` program computed once per batch by RewardVecEnv:

- gymnasium: N gymnasium environments in a CapturingVecEnv (SB3's DummyVecEnv
             copying each simulation into the State buffers as it steps).
- batched:   BatchedVecEnv on N MjData on the CPU: the same trajectories,
             gymnasium's semantics computed over the batch in numpy.
- warp:      BatchedVecEnv on MuJoCo Warp worlds (float32), on --device.
             On Warp's CPU device it is far slower than MuJoCo's CPU path
             (each substep is ~100 kernel launches); it is measured with
             few steps, for information only.

1. raw stepping: env steps/s stepping with random actions, no learning.
2. training: env steps/s of `model.learn` (VecNormalize + PPO), timed around
   `learn` alone. On the CPU, PPO is autoreward's own (`training.build_model`);
   with --device cuda the policy runs on the GPU with minibatches sized for
   thousands of environments (printed).

Rounds are interleaved (simulator order alternates) after one warm-up each.

Usage:
    python bench/simulators.py                       # CPU: N = 4, 16, 64; about 5 minutes on 2 cores
    python bench/simulators.py --quick               # smoke run
    python bench/simulators.py --device cuda         # GPU: N = 1024, 4096, 8192; batched (CPU) vs warp
"""

from __future__ import annotations

import platform
import statistics
import time
import warnings
from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch
from dataclass_args import parse_dataclass  # bench/, first on sys.path when a script runs
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from autoreward.config import TrainingConfig
from autoreward.contract import reward_program
from autoreward.loop.training import build_model
from autoreward.sim.vec_env import make_vec_env
from autoreward.task.files import find_task

warnings.filterwarnings("ignore", message=".*settotalmass.*")


@dataclass
class Args:
    task: str = field(default="half_cheetah_forward", metadata={"help": "task id or task .toml file"})
    device: str = field(
        default="cpu", metadata={"help": "cpu, or cuda for the GPU run (Warp on the GPU, PPO on the GPU)"}
    )
    n_envs: str = field(
        default="", metadata={"help": "comma-separated batch sizes (default 4,16,64 on cpu; 1024,4096,8192 on cuda)"}
    )
    simulators: str = field(
        default="", metadata={"help": "comma-separated (default gymnasium,batched,warp on cpu; batched,warp on cuda)"}
    )
    raw_steps: int = field(default=24_000, metadata={"help": "env steps per raw-stepping run (at least 20 batches)"})
    raw_repeats: int = field(default=3, metadata={"help": "timed raw-stepping rounds"})
    warp_cpu_batches: int = field(default=10, metadata={"help": "batches per raw run of warp on Warp's CPU device"})
    train_steps: int = field(default=20_000, metadata={"help": "env steps per training run (0: no training)"})
    train_n_envs: str = field(
        default="", metadata={"help": "batch sizes for training (default 4,16 on cpu; 4096 on cuda)"}
    )
    train_repeats: int = field(default=2, metadata={"help": "timed training rounds"})
    seed: int = field(default=0, metadata={"help": "seed of environments and PPO"})
    quick: bool = field(default=False, metadata={"help": "smoke run: few steps, one round"})


def parse_args() -> Args:
    args = parse_dataclass(Args, __doc__.split("\n")[0])
    gpu = args.device.startswith("cuda")
    args.n_envs = args.n_envs or ("1024,4096,8192" if gpu else "4,16,64")
    args.simulators = args.simulators or ("batched,warp" if gpu else "gymnasium,batched,warp")
    args.train_n_envs = args.train_n_envs or ("4096" if gpu else "4,16")
    if gpu and args.raw_steps == 24_000:
        args.raw_steps = 2_000_000
    if gpu and args.train_steps == 20_000:
        args.train_steps = 2_000_000
    if args.quick:
        args.raw_steps, args.raw_repeats, args.train_steps, args.train_repeats, args.warp_cpu_batches = (
            4_000,
            1,
            4_000,
            1,
            3,
        )
    return args


args = parse_args()
torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
task = find_task(args.task)
reward_function = reward_program.load(open(task.human_reward).read())
SIMULATORS = [s.strip() for s in args.simulators.split(",") if s.strip()]
if "warp" in SIMULATORS:
    try:
        import warp

        warp.config.quiet = True  # no banner, no line per compiled module
        import mujoco_warp  # noqa: F401
    except ImportError:
        print("warp: not measured: mujoco-warp is not installed (pip install 'autoreward[gpu]')")
        SIMULATORS.remove("warp")


def make(simulator: str, n_envs: int):
    device = args.device if simulator == "warp" else "cpu"
    return make_vec_env(task, n_envs, args.seed, "program", reward_function, simulator=simulator, device=device)


def batches_for(simulator: str, n_envs: int, steps: int) -> int:
    if simulator == "warp" and args.device == "cpu":
        return args.warp_cpu_batches
    return max(20, steps // n_envs)


def raw_once(simulator: str, n_envs: int) -> float:
    env = make(simulator, n_envs)
    env.reset()
    rng = np.random.default_rng(args.seed)
    low, high = env.action_space.low, env.action_space.high
    batches = batches_for(simulator, n_envs, args.raw_steps)
    actions = rng.uniform(low, high, size=(batches, n_envs, *low.shape)).astype(np.float32)
    env.step(actions[0])  # first call: CUDA graph capture on the GPU
    started = time.perf_counter()
    for batch in actions[1:]:
        env.step(batch)
    seconds = time.perf_counter() - started
    env.close()
    return (batches - 1) * n_envs / seconds


def ppo(env, n_envs: int):
    if args.device == "cpu":
        config = TrainingConfig(algo="ppo", steps=args.train_steps, seed=args.seed, n_envs=n_envs)
        return build_model(config, env, args.seed)
    # Thousands of environments: short rollouts, few large minibatches, the policy on the GPU.
    n_steps = 16
    return PPO(
        "MlpPolicy",
        env,
        n_steps=n_steps,
        batch_size=n_steps * n_envs // 4,
        n_epochs=5,
        seed=args.seed,
        device=args.device,
        verbose=0,
    )


def train_once(simulator: str, n_envs: int, steps: int) -> float:
    env = VecNormalize(make(simulator, n_envs), gamma=0.99)
    model = ppo(env, n_envs)
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - started
    env.close()
    return model.num_timesteps / seconds


def measure(label: str, once, sizes: list[int], repeats: int, simulators: list[str]) -> dict:
    results: dict[tuple[str, int], list[float]] = {}
    for n in sizes:
        for simulator in simulators:  # warm-up: imports, kernel compilation, first calls
            once(simulator, n, warm=True)
        for round_index in range(repeats):
            order = simulators if round_index % 2 == 0 else simulators[::-1]
            for simulator in order:
                rate = once(simulator, n, warm=False)
                results.setdefault((simulator, n), []).append(rate)
                print(
                    f"  {label} N={n:>5} round {round_index + 1}/{repeats} {simulator:>9}: {rate:10.0f} steps/s",
                    flush=True,
                )
    return {key: statistics.median(rates) for key, rates in results.items()}


def table(title: str, rates: dict, sizes: list[int], simulators: list[str]) -> None:
    base = "gymnasium" if "gymnasium" in simulators else simulators[0]
    print(f"\n{title} (median env steps/s; ratio to {base} at the same N)")
    print(f"{'N':>6}" + "".join(f"{s:>14}{'ratio':>8}" for s in simulators))
    for n in sizes:
        row = f"{n:>6}"
        for s in simulators:
            rate = rates.get((s, n))
            row += f"{rate:>14.0f}{rate / rates[(base, n)]:>8.2f}" if rate else f"{'-':>14}{'':>8}"
        print(row)


print(f"task {task.id} ({task.env_id}), reward program {task.human_reward}, device {args.device}")
print(
    f"python {platform.python_version()}, mujoco {mujoco.__version__}, torch {torch.__version__}, "
    f"numpy {np.__version__}, torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}",
    flush=True,
)
sizes = [int(n) for n in args.n_envs.split(",")]
print("raw stepping (random actions, reward program once per batch, no learning):", flush=True)
raw = measure(
    "raw",
    lambda s, n, warm: raw_once(s, n) if not warm else (make(s, n).reset(), None)[1],
    sizes,
    args.raw_repeats,
    SIMULATORS,
)
table("raw stepping", raw, sizes, SIMULATORS)

if args.train_steps:
    train_sizes = [int(n) for n in args.train_n_envs.split(",")]
    # Warp on Warp's CPU device trains at a few steps per second: not worth the minutes.
    trainable = [s for s in SIMULATORS if not (s == "warp" and args.device == "cpu")]
    print("\ntraining (VecNormalize + PPO, model.learn):", flush=True)
    training = measure(
        "train",
        lambda s, n, warm: train_once(s, n, max(2_048, args.train_steps // 10) if warm else args.train_steps),
        train_sizes,
        args.train_repeats,
        trainable,
    )
    table("training", training, train_sizes, trainable)
