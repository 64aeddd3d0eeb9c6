"""What autoreward is asked to do, in one place: the task and every settings object passed down.

Frozen dataclasses, plain typed fields, no logic beyond small derivations:
a `Task` (what to do, how success is measured, its `Budget`), the settings
of one training (`TrainingConfig`, made from a `Budget`), of a check
(`CheckOptions`), of a worker (`WorkerLimits`), of a design run
(`LoopConfig`, `LLMSettings`, `RunConfig`). What is made along the way (results)
is in `autoreward.records`; both go to JSON and back through
`autoreward.serialize`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

Reduce = Literal["mean", "sum", "last"]


@dataclass(frozen=True)
class Fitness:
    """The trusted measure of how well a task was done; never shown to a reward designer.

    `step` is a numpy expression over `state`, `action` and `next_state` giving
    one value per environment and step; `reduce` turns an episode's values into
    one number (its mean, its sum, or its last value).
    """

    step: str
    reduce: Reduce
    description: str
    higher_is_better: bool = True

    def succeeded(self, value: float, threshold: float | None) -> bool | None:
        """Whether an episode's fitness reaches the success threshold (None when there is none)."""
        if threshold is None:
            return None
        return value >= threshold if self.higher_is_better else value <= threshold


@dataclass(frozen=True)
class Budget:
    """How much one candidate's training may spend: the algorithm, its steps, environments, held-out episodes."""

    algo: Literal["ppo", "sac"] = "ppo"
    steps: int = 200_000
    n_envs: int = 4
    eval_episodes: int = 5
    curve_points: int = 10  # training statistics recorded at this many points
    # The progress form (ProgressCounts): the count bonus beta / sqrt(n(bin)) over the progress vector, binned
    # into `progress_bins` levels per dimension. Defaults: see bench/README.md (the forms); 5 levels rather than
    # 10 there, where the finer bins kept paying a bonus large enough that policies unlearned arriving.
    progress_beta: float = 0.1
    progress_bins: int = 5
    # The latent form (LaRe): the return decomposition is fitted by least squares over this many recent episodes.
    latent_episodes: int = 64


@dataclass(frozen=True)
class PlannerSettings:
    """How hard predictive sampling looks (`sim/predictive_sampling.py`, `autoreward preview`): rollouts per
    control step, how far ahead, and how wide. Defaults tried on HalfCheetah-v5 only so far (bench/preview.py
    is where they are measured per model)."""

    horizon: int = 30  # control steps a rollout looks ahead
    samples: int = 32  # rollouts per control step, the nominal one included
    noise: float = 0.3  # the perturbation's standard deviation, as a share of half the control range
    knots: int = 4  # spline control points over the horizon

    def problem(self) -> str | None:
        """Why these settings cannot plan, in one sentence; None when they can."""
        if self.horizon < 1:
            return f"the planner's horizon must be at least 1 step, got {self.horizon}"
        if self.samples < 2:
            return f"the planner needs at least 2 samples (the nominal and one perturbation), got {self.samples}"
        if not 2 <= self.knots <= self.horizon + 1:
            return f"the planner's knots must be between 2 and the horizon + 1 ({self.horizon + 1}), got {self.knots}"
        if not self.noise > 0:
            return f"the planner's noise must be above 0, got {self.noise}"
        return None


@dataclass(frozen=True)
class Task:
    """What to do, in which environment, and how success is measured."""

    id: str
    env_id: str
    description: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    fitness: Fitness | None = None
    success_threshold: float | None = None
    max_episode_steps: int | None = None
    budget: Budget = Budget()
    extras: dict[str, str] = field(default_factory=dict)
    human_reward: str | None = None  # a reward program reproducing the environment's own reward
    source: str | None = None  # the file it was read from
    planner: PlannerSettings = PlannerSettings()  # how `autoreward preview` plans on it (the task file's [preview])


RewardSource = Literal["program", "native", "sparse"]
# What a reward program returns, and how training turns it into rewards (`autoreward.contract.forms`): a dense
# reward; progress estimates in [0, 1] with the sparse reward and a count bonus; or latent terms whose weights a
# return decomposition fits to the task score.
RewardForm = Literal["reward", "progress", "latent"]
REWARD_FORMS: tuple[RewardForm, ...] = ("reward", "progress", "latent")


# Where environments are simulated: gymnasium environments, one CPU batch, or MuJoCo Warp worlds.
Simulator = Literal["gymnasium", "batched", "warp"]


@dataclass(frozen=True)
class WorkerLimits:
    """What a worker process may spend before its supervisor stops it."""

    wall_seconds: float = 3600.0
    idle_seconds: float = 60.0  # longest silence between two messages
    memory_bytes: int | None = 8 * 1024**3  # address space (RLIMIT_AS)
    file_bytes: int = 2 * 1024**3  # largest file it may write (RLIMIT_FSIZE)
    # What it may add to its output folder in all, measured by its supervisor once a second: a training's
    # folder holds well under 10 MB, SAC's replay buffer (up to `file_bytes`) aside.
    folder_bytes: int = 4 * 1024**3
    cpu_seconds: float | None = None  # RLIMIT_CPU; None: the wall budget plus a few seconds
    # Threads and processes beyond what the worker's user already runs (RLIMIT_NPROC): a root orchestrator's
    # jailed workers run as an unprivileged user, so it holds for them; unjailed, root's are not limited.
    processes: int = 512
    # GPUs the executor places it on: the local one picks the least busy GPU (through CUDA_VISIBLE_DEVICES),
    # a Ray task asks the cluster for them and its node's GPU devices are passed in. 0 for a pinned "cuda:N".
    gpus: int = 0


FeedbackSource = Literal["fitness", "human", "synthetic", "llm", "vlm"]


PreferenceSourceName = Literal["human", "synthetic", "llm", "vlm"]


# How a task given only in words is scored: by a task score an LLM proposes and a person accepts, or by a judge.
ScoreSource = Literal["proposed", "judged"]

# What `confirm_seeds` is when not given, where the task score picks (feedback "fitness"). Measured by
# bench/confirm_seeds.py on five seeds (bench/README.md): K = 1 raised the picks' mean score by 1.3% for 47%
# more training steps a round, on a pool whose top two are within noise; not worth it by default.
DEFAULT_CONFIRM_SEEDS = 0
DEFAULT_PAGE_URL = "http://127.0.0.1:8765"  # where `autoreward serve` shows runs, and a person gives preferences


@dataclass(frozen=True)
class LoopConfig:
    """How a design run searches: rounds of candidates, their repairs and review, and the budgets.

    `halving` is off by default. It saves training steps (2x for 4 candidates
    with eta 2) but not wall time unless there are more candidates than
    `workers` (its rungs wait for each other), it adds a worker start and an
    evaluation per slice, and it can stop a reward that learns slowly at
    first but would have won; with the default 4 candidates that trade is
    not worth making for the user by default. Tasks without a task score
    (judged) are never halved: there is nothing to rank a rung by.
    """

    rounds: int = 3
    candidates: int = 4  # designed per round, in parallel
    # The reward forms the designer is asked for (contract/forms.py); with several, a round's candidates take
    # them in turn (candidate i gets forms[i % len(forms)]) and all compete on the same task score.
    forms: tuple[RewardForm, ...] = ("reward",)
    repair_attempts: int = 2  # repairs after a failed check or a critic's rejection
    critic: bool = True
    analyzer: bool = True
    # Score stored episodes with a new candidate before training it (from round 2); off by default: on a hard
    # task the stored episodes are mostly failures, and their ranking blocked good rewards (loop/prescreen.py).
    prescreen: bool = False
    prescreen_threshold: float = 0.5  # a chance agreement: not trained when significantly below it (p < 0.01)
    # Preview each checked candidate (one episode planned on it, loop/preview.py) before training: trainings
    # start best preview first, and only the best `mpc_keep` share of a round's previews is trained. Off by
    # default: bench/mpc_ranking.py measures how well a preview ranks rewards as PPO does.
    mpc_prescreen: bool = False
    mpc_keep: float = 1.0
    # Successive halving of each round's trainings (halving.py); off by default: see LoopConfig's docstring.
    halving: bool = False
    halving_eta: int = 2  # each rung keeps the best 1/eta and trains them eta times longer
    final_seeds: int = 3  # the best reward is re-trained on this many seeds at the end
    # Before a round's best becomes the best so far, the candidates near it are trained on this many more seeds
    # and picked by their mean (loop/confirmation.py); 0: one seed decides. Only when the task score picks.
    confirm_seeds: int = 0
    final_steps: int | None = None  # budget of the final training; None: the round budget
    workers: int = 1  # trainings at once
    executor: Literal["local", "ray"] = "local"  # where trainings and pre-screens run (checks always run here)
    ray_address: str | None = None  # the Ray cluster's head (HOST:PORT); None: a private Ray on this machine
    temperature: float = 1.0
    max_tokens: int | None = None
    budget: Budget = Budget()  # training budget of each candidate
    seed: int = 0
    # What picks each round's best and what the designer is told: the task's fitness (scores), or a
    # preference between the round's policies from a person, from the fitness unseen (synthetic), or an LLM.
    feedback: FeedbackSource = "fitness"
    simulator: Simulator = "gymnasium"  # where every training of the run is simulated
    device: str = "cpu"  # where its policies learn and Warp's worlds run: "cpu" or "cuda[:N]" (TrainingConfig.device)
    videos: bool = True  # each training renders its policy's first held-out episode to video.mp4
    # A task given in words: "proposed", an LLM writes a task score before round 1 and a person accepts it (or,
    # with `accept_score`, it is trusted as written); "judged", no score, each round's best picked by a judge.
    score: ScoreSource = "judged"
    accept_score: bool = False
    # The analyzer also sees frames of the best policy's video, asked through the vision model (as the judge:
    # LLMSettings.vlm_model).
    analyzer_frames: bool = False

    def training_config(self, seed: int | None = None, steps: int | None = None, **overrides: Any) -> "TrainingConfig":
        """How a training of this run trains: its budget, simulator, device and videos, on its seed unless
        `seed` is given, for the budget's steps unless `steps` is; `overrides` set other TrainingConfig fields."""
        return TrainingConfig.from_budget(
            self.budget,
            seed=self.seed if seed is None else seed,
            steps=steps,
            simulator=self.simulator,
            device=self.device,
            video=self.videos,
        ).with_changes(**overrides)

    def problem(self) -> str | None:
        """Why these settings cannot run together, in one sentence; None when they can."""
        unknown = [form for form in self.forms if form not in REWARD_FORMS]
        if unknown or not self.forms or len(set(self.forms)) != len(self.forms):
            return (
                f"--forms names reward forms, each once, from {', '.join(REWARD_FORMS)}; got "
                f"{','.join(self.forms) or 'none'}"
            )
        if self.halving and self.feedback != "fitness":
            # Its rungs rank by the task score, and a stopped candidate never reaches a preference's pool.
            return (
                f"--halving ranks its rungs by the task score, which --feedback {self.feedback} keeps from "
                "steering the run; use one or the other"
            )
        if self.confirm_seeds and self.feedback != "fitness":
            return (
                f"--confirm-seeds picks a round's best by its task score over more seeds, and --feedback "
                f"{self.feedback} picks it by a preference; use one or the other"
            )
        if not 0 < self.mpc_keep <= 1:
            return f"--mpc-keep is the share of a round's previews trained, above 0 and at most 1, got {self.mpc_keep}"
        if self.mpc_prescreen and self.feedback != "fitness":
            return (
                f"--mpc-prescreen ranks candidates by their preview's task score, which --feedback {self.feedback} "
                "keeps from steering the run; use one or the other"
            )
        if self.feedback == "vlm" and not self.videos:
            return "--feedback vlm shows the judge frames of each policy's video, which --no-videos turns off"
        if self.analyzer_frames and not (self.analyzer and self.videos):
            return (
                "--analyzer-frames shows the analyzer frames of the best policy's video, which "
                + ("--no-analyzer" if not self.analyzer else "--no-videos")
                + " turns off"
            )
        return None


LLMBackend = Literal["openai", "replay", "manual"]


@dataclass(frozen=True)
class LLMSettings:
    """Which LLM answers a run, enough to reconnect on resume. Never the key: that is read from the environment."""

    backend: LLMBackend = "openai"
    model: str = "gpt-4o-mini"
    base_url: str | None = None  # None: OpenAI's own service
    api_key_variable: str = "OPENAI_API_KEY"  # the environment variable holding the key
    transcript: str | None = None  # the replay backend's transcript file
    attempts: int = 6  # tries per call before giving up (rate limits, server errors, timeouts)
    timeout_seconds: float = 180.0  # one attempt's longest wait for a reply
    # The judge that watches videos (--feedback vlm): its model and server; None, the designer's.
    vlm_model: str | None = None
    vlm_base_url: str | None = None

    def describe(self) -> str:
        if self.backend == "replay":
            return f"replay of {self.transcript}"
        if self.backend == "manual":
            return "manual: a person answers each prompt"
        designer = f"{self.model} at {self.base_url or 'https://api.openai.com/v1'}"
        if not (self.vlm_model or self.vlm_base_url):
            return designer
        watching = (
            f"{self.vlm_model or self.model} at {self.vlm_base_url or self.base_url or 'https://api.openai.com/v1'}"
        )
        return f"{designer}; the watching judge {watching}"


@dataclass(frozen=True)
class RunConfig:
    """Everything a run was asked to do; written once, read again on resume. Holds no secret."""

    run_id: str
    task: Task
    loop: LoopConfig
    llm: LLMSettings
    created: str
    autoreward_version: str


@dataclass(frozen=True)
class TrainingConfig(Budget):
    """How one policy is trained: a `Budget`, and the reward's source, the seed, the simulator and the device."""

    reward_source: RewardSource = "program"
    seed: int = 0
    normalize: bool = True  # VecNormalize observations and rewards (PPO only)
    wall_seconds: float = 6 * 3600.0
    # Address space of the training worker (RLIMIT_AS); CPU training peaks near 1 GiB. None: no limit.
    memory_bytes: int | None = 8 * 1024**3
    # Where training environments are simulated (see vec_env.make_vec_env). Held-out evaluation is always
    # on gymnasium's environments, so scores compare across simulators.
    simulator: Simulator = "gymnasium"
    # Where the policy learns and, with the warp simulator, where its worlds are stepped: "cpu" or "cuda[:N]".
    # On a GPU the worker sees the machine's /dev/nvidia* devices and /sys (Jail.with_gpus) and has no RLIMIT_AS,
    # since CUDA maps far more address space than it uses.
    device: str = "cpu"
    video: bool = True  # render the first held-out episode to video.mp4 (autoreward.sim.video)

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def with_changes(self, **changes: Any) -> "TrainingConfig":
        """This config with the `changes` that are not None."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_budget(cls, budget: Budget, **overrides: Any) -> "TrainingConfig":
        """The config of a training that spends `budget`; `overrides` that are None are left at their defaults."""
        given = {f.name: getattr(budget, f.name) for f in fields(Budget)}
        return cls(**(given | {k: v for k, v in overrides.items() if v is not None}))


@dataclass(frozen=True)
class Recipe:
    """Another way to train a run's best reward and its baselines (`autoreward evaluate`): does the pick hold?

    A reward chosen under autoreward's recipe can lose under the one a person trains with; each field left
    at its default when the recipe is made from a run is the run's own.
    """

    algo: Literal["ppo", "sac"] = "ppo"
    normalize: bool = True  # VecNormalize over observations and rewards (PPO only)
    n_envs: int = 4
    seeds: int = 2  # trained on the run's seed, seed + 1, ...
    steps: int = 200_000

    @property
    def name(self) -> str:
        """A folder name that says the recipe: ppo-normalized-4envs-200000steps-2seeds."""
        normalized = "normalized" if self.normalize and self.algo == "ppo" else "raw"
        return f"{self.algo}-{normalized}-{self.n_envs}envs-{self.steps}steps-{self.seeds}seeds"

    def describe(self) -> str:
        """In words: PPO, VecNormalize, 4 environments, 200,000 steps, 2 seeds."""
        normalized = "VecNormalize" if self.normalize and self.algo == "ppo" else "raw rewards"
        return (
            f"{self.algo.upper()}, {normalized}, {self.n_envs} environment{'s' if self.n_envs != 1 else ''}, "
            f"{self.steps:,} steps, {self.seeds} seed{'s' if self.seeds != 1 else ''}"
        )


@dataclass(frozen=True)
class CheckOptions:
    transitions: int = 256  # states gathered from random rollouts
    batch_size: int = 64  # rows per call
    rows_compared: int = 16  # rows checked one at a time against the batch
    call_budget_seconds: float = 0.02  # one call on `batch_size` rows
    largest_value: float = 1e6  # |reward| above this is refused: it would swamp training
    seed: int = 0
    idle_seconds: float = 20.0  # a call silent this long is a hang
    training_batch_size: int | None = None  # rows per call in training (its n_envs); None: the task's budget
