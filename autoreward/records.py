"""Every record that moves between the parts of autoreward, in one place.

Records are frozen dataclasses. `to_dict` and `from_dict` turn them into
JSON-ready dicts and back, so each one can be written to the run folder as
it is made and read again on resume.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from autoreward.config import Fitness, PreferenceSourceName, Recipe, RewardForm, RewardSource, RunConfig, TrainingConfig


def now_iso() -> str:
    """The time records are stamped with: local time, ISO 8601, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class CheckCategory(str, enum.Enum):
    """How a reward program failed its check (or OK)."""

    OK = "ok"
    SYNTAX = "syntax"
    SIGNATURE = "signature"
    FORBIDDEN = "forbidden"
    EXCEPTION = "exception"
    WRONG_OUTPUT = "wrong_output"
    WRONG_SHAPE = "wrong_shape"
    NON_FINITE = "non_finite"
    WRITES_INPUT = "writes_input"  # it edits state, action or next_state in place
    OUT_OF_RANGE = "out_of_range"
    NOT_VECTORIZED = "not_vectorized"
    NON_DETERMINISTIC = "non_deterministic"
    TOO_SLOW = "too_slow"
    TIMEOUT = "timeout"
    KILLED = "killed"
    WORKER_SETUP = "worker_setup"  # the check's worker could not start: not the program's fault


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking a reward program: a category and a message written for its author."""

    category: CheckCategory
    message: str
    line: int | None = None
    components: tuple[str, ...] = ()
    seconds_per_call: float | None = None
    # On the states of a passed check: each component's mean, min and max, and whether the total is their sum.
    component_stats: dict[str, ComponentStats] = field(default_factory=dict)
    total_is_sum: bool | None = None

    @property
    def ok(self) -> bool:
        return self.category is CheckCategory.OK


@dataclass(frozen=True)
class ComponentStats:
    mean: float
    min: float
    max: float


@dataclass(frozen=True)
class CurvePoint:
    """Training statistics over the steps since the previous point."""

    step: int
    wall_seconds: float
    steps_per_second: float
    reward_mean: float
    components: dict[str, ComponentStats]
    episodes: int
    episode_length: float | None
    fitness: float | None
    # True when no episode ended in the window and `fitness` comes from episodes still running.
    fitness_partial: bool = False


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    length: int
    fitness: float | None
    native_return: float
    reward_return: float
    component_returns: dict[str, float]
    terminated: bool


@dataclass(frozen=True)
class QuantityStats:
    """One state quantity over held-out episodes: its range, and its average early and late in an episode."""

    name: str
    unit: str
    mean: float
    min: float
    max: float
    start: float  # mean over the first tenth of each episode
    end: float  # mean over the last tenth of each episode


@dataclass(frozen=True)
class RewardRead:
    """A State path a reward program reads, found in its text without running it (`contract/reads.py`)."""

    path: str  # a State path such as "bodies.foot.pos", or "action"
    column: int | None = None  # the column the program takes (`pos[:, 2]`), when it takes one
    feeds: tuple[str, ...] | None = None  # the components it flows into; (): the total alone; None: not traced


@dataclass(frozen=True)
class ReadQuantity:
    """A quantity the reward reads, over held-out episodes, with the components it feeds."""

    stats: QuantityStats
    feeds: tuple[str, ...] | None = None  # as RewardRead's: (): the total alone; None: not traced


@dataclass(frozen=True)
class ContactShare:
    """How often a body was in contact over held-out episodes: the share of steps its contact force was not 0."""

    body: str
    share: float  # over every step
    start: float  # over the first tenth of each episode
    end: float  # over the last tenth of each episode


@dataclass(frozen=True)
class TrajectorySummary:
    """What a trained policy did, in numbers an analyzer can read."""

    episodes: int
    terminated: int  # ended early by the environment (e.g. a fall); the rest hit the time limit
    length_mean: float
    quantities: tuple[QuantityStats, ...]
    # What the reward reads (at most a few rows), and the bodies that touched anything; empty in older records.
    reads: tuple[ReadQuantity, ...] = ()
    contacts: tuple[ContactShare, ...] = ()


@dataclass(frozen=True)
class Evaluation:
    """A trained policy scored on held-out episodes with fixed seeds."""

    episodes: tuple[EpisodeResult, ...]
    fitness_mean: float | None
    fitness_std: float | None
    length_mean: float
    success_rate: float | None
    summary: TrajectorySummary | None = None
    # The task score of the policy as it explores (sampled actions), over as many more episodes: what
    # successive halving ranks a slice by. Played by the evaluation worker, so no candidate can forge it.
    exploring_fitness_mean: float | None = None


@dataclass(frozen=True)
class TrainingResult:
    task_id: str
    reward_source: RewardSource
    algo: str
    steps: int
    seed: int
    n_envs: int
    curve: tuple[CurvePoint, ...]
    evaluation: Evaluation
    wall_seconds: float
    steps_per_second: float
    # The policy's video, a path in the training's folder (evaluation/video.mp4); None when none was made.
    video: str | None = None
    video_error: str | None = None  # why a video that was asked for could not be made
    # Seconds the held-out evaluation and the scoring of its episodes took, in their own workers, after training.
    evaluation_seconds: float | None = None
    form: RewardForm = "reward"  # the reward program's form (contract/forms.py)
    form_report: FormReport | None = None  # what a progress or latent program's training reward learned


@dataclass(frozen=True)
class FormTerm:
    """One term of a progress or latent program in a training: its range, and the latent form's fitted weight."""

    name: str
    low: float
    high: float
    weight: float | None = None


@dataclass(frozen=True)
class FormReport:
    """What a progress or latent program's training reward learned (`sim/reward_forms.py`): each term's range;
    the progress form's bins (levels per dimension), how many it visited and its bonus scale; the latent form's
    weights (in its terms) and the episodes they were fitted on. From the training worker: shown, never picks."""

    form: str
    terms: tuple[FormTerm, ...]
    bins: int | None = None
    bins_visited: int | None = None
    beta: float | None = None
    episodes_fitted: int | None = None

    def describe(self) -> str:
        """What the training learned, in one line."""
        if self.form == "progress":
            ranges = ", ".join(f"{t.name} [{t.low:.3g}, {t.high:.3g}]" for t in self.terms)
            total = (self.bins or 0) ** len(self.terms)
            return f"progress: {self.bins_visited} of {total} bins visited (beta {self.beta:.3g}); ranges {ranges}"
        weights = ", ".join(f"{t.name} {t.weight or 0.0:.3g}" for t in self.terms)
        return f"latent: fitted weights {weights} (on {self.episodes_fitted} episodes)"


@dataclass(frozen=True)
class LearnerResult:
    """What a training worker reports (it ran the reward program, so all of it is checked and none of it picks):
    the steps it trained, its curve and how long it took. The policy it leaves as arrays (policy.npz)."""

    steps: int
    curve: tuple[CurvePoint, ...]
    wall_seconds: float
    form_report: FormReport | None = None  # a progress or latent program's


@dataclass(frozen=True)
class NormalizedScore:
    """Eureka's human-normalized score: (F - F_sparse) / |F_human - F_sparse|."""

    fitness: float
    fitness_human: float
    fitness_sparse: float
    score: float | None  # None when the human and sparse baselines tie

    @classmethod
    def compute(cls, fitness: float, human: float, sparse: float, higher_is_better: bool = True) -> "NormalizedScore":
        gap = abs(human - sparse)
        sign = 1.0 if higher_is_better else -1.0
        score = None if gap < 1e-12 else sign * (fitness - sparse) / gap
        return cls(fitness=fitness, fitness_human=human, fitness_sparse=sparse, score=score)


# --- serialisation ---------------------------------------------------------


# --- workers -----------------------------------------------------------------

# "setup_failed": the worker raised before it reported anything (an import it could not make, a missing file).
# "worker_protocol": it sent a message, a result or a file that is not what its job sends (checked, never trusted).
WorkerStatus = Literal[
    "ok", "error", "timeout", "idle_timeout", "killed", "setup_failed", "interrupted", "worker_protocol"
]


@dataclass(frozen=True)
class WorkerOutcome:
    """How a worker process ended, and the result it reported if it got that far."""

    status: WorkerStatus
    message: str
    result: Any = None
    exit_code: int | None = None
    log_tail: str = ""
    # The check category of a reward program that broke its contract while the worker ran it (the passive
    # check): the message is then a sentence for its author, and the log's traceback adds nothing.
    category: str | None = None


@dataclass(frozen=True)
class Baselines:
    """The two references a fitness is normalized against, trained with the same budget and seed."""

    task_id: str
    algo: str
    steps: int
    seed: int
    human_source: str  # the human reward program's file, or "environment" for the environment's own reward
    human: TrainingResult
    sparse: TrainingResult

    def normalize(self, fitness: float, higher_is_better: bool = True) -> NormalizedScore:
        return NormalizedScore.compute(
            fitness, self.human.evaluation.fitness_mean, self.sparse.evaluation.fitness_mean, higher_is_better
        )


@dataclass(frozen=True)
class ExportInfo:
    """Where an exported reward came from and how well it scored; the exported module's header shows it.

    The scores are those of the final evaluation: policies trained with this
    reward (`algo`, `steps` per seed, `seeds` seeds), scored on held-out
    episodes. Scores not measured are None.
    """

    run_id: str
    model: str  # the LLM that wrote the program, or "human" / "replay"
    created: str  # ISO 8601 date (and time) of the export
    autoreward_version: str
    algo: str
    steps: int
    seeds: int
    round: int | None = None  # the design round that produced the program
    candidate_id: str | None = None  # the candidate within its round
    fitness_mean: float | None = None  # the task's fitness on held-out episodes, over all seeds
    fitness_std: float | None = None
    normalized_score_mean: float | None = None  # human-normalized score (see NormalizedScore), over seeds
    normalized_score_std: float | None = None
    # How the scored policies were trained (the final evaluation's config; its seed is the first of the seeds),
    # so the module's train() can do it again; and each seed's held-out task score as the run measured it.
    training: TrainingConfig | None = None
    recorded_scores: dict[int, float] = field(default_factory=dict)
    normalized_note: str | None = None  # why the normalized score means nothing, where it does not
    human_name: str = "the hand-written reward"  # what the human baseline was
    policy_seed: int | None = None  # the seed whose trained policy was exported beside the module, if one was
    # What a progress or latent program's training learned (its count table's summary, its fitted weights): the
    # final training on `form_seed`'s; the module shows it, and carries the latent form's weights.
    form_report: FormReport | None = None
    form_seed: int | None = None


# --- the design loop -----------------------------------------------------------


Verdict = Literal["accept", "reject"]


@dataclass(frozen=True)
class Critique:
    """A critic's review of one checked program."""

    verdict: Verdict
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Attempt:
    """One program a designer wrote for a candidate (the first, or a repair) and what became of it."""

    number: int  # 0 for the first design, then each repair
    code: str | None  # None when no program could be taken from the reply
    problem: str | None = None  # why no program was found in the reply
    check: CheckResult | None = None
    critique: Critique | None = None
    explanation: str = ""  # the designer's words around the code: what it changed and why


CandidateStatus = Literal["ready", "failed_check", "rejected", "prescreened_out", "trained", "training_failed"]


@dataclass(frozen=True)
class ChatTurn:
    """One turn of an interactive design session (`autoreward chat`, `loop/chat.py`): what the person asked for,
    the reward the designer wrote for it (candidate `r<number>c0` of the run), its preview, and what the person
    said after watching it."""

    number: int
    asked: str | None  # the correction this turn answers; None for the first turn (the task alone)
    candidate_id: str
    ready: bool = False  # its reward passed its check and the critic
    previewed: bool = False  # its preview finished (preview/preview.json in the candidate's folder)
    problem: str | None = None  # why it has no preview: a failed check, a planner or replay that failed
    reply: str | None = None  # what the person said next: a correction, "train" or "quit"; None while unasked


@dataclass(frozen=True)
class ChatRecord:
    """An interactive design session so far (`chat.json` in its run folder), read back on resume."""

    turns: tuple[ChatTurn, ...] = ()
    trained: str | None = None  # the candidate trained when the person said "train"


@dataclass(frozen=True)
class Candidate:
    """One candidate reward of a round, from its design to its evaluation."""

    id: str  # e.g. "r2c1": round 2, candidate 1
    round: int
    index: int
    status: CandidateStatus
    attempts: tuple[Attempt, ...]
    message: str = ""  # why it was dropped or failed
    training: TrainingResult | None = None
    # Pre-screening: the share of pairs of stored episodes it ranked as their task scores do.
    screening_agreement: float | None = None
    # ...and the one-sided binomial p-value of an agreement this low from a reward ranking at chance.
    screening_p_value: float | None = None
    # --mpc-prescreen: the task score of the episode a preview planned on it (loop/preview.py), before training.
    preview_score: float | None = None
    form: RewardForm = "reward"  # the form the designer was asked for (contract/forms.py)
    # Successive halving stopped it after this many steps (its last slice's budget; `training` is that slice's).
    stopped_at: int | None = None
    # --confirm-seeds: near its round's best, it was trained on the run's next seeds; its task score on each.
    confirmation: tuple[float, ...] = ()

    @property
    def code(self) -> str | None:
        return self.attempts[-1].code if self.attempts else None

    @property
    def fitness(self) -> float | None:
        return self.training.evaluation.fitness_mean if self.training else None

    @property
    def confirmed_fitness(self) -> float | None:
        """The mean task score over the round's seed and the confirmation seeds; None when not confirmed."""
        if not self.confirmation or self.fitness is None:
            return None
        return (self.fitness + sum(self.confirmation)) / (1 + len(self.confirmation))

    @property
    def selection_fitness(self) -> float | None:
        """The score a round's best is picked by: the confirmed mean where there is one, else the task score."""
        return self.confirmed_fitness if self.confirmed_fitness is not None else self.fitness


@dataclass(frozen=True)
class Feedback:
    """What training a candidate showed, for the designer of the next round."""

    candidate_id: str
    reflection: str  # reward reflection: per-component statistics, task score, episode lengths
    trajectory: str  # the numeric summary of held-out episodes
    analysis: str | None = None  # the analyzer's reading of that summary
    preference: str | None = None  # which policy was preferred over which, and what the judge said

    def text(self) -> str:
        parts = [self.preference] if self.preference else []
        parts += [self.reflection, "What the policy did on held-out episodes:\n\n" + self.trajectory]
        if self.analysis:
            parts.append("An analyst's reading of these numbers:\n" + self.analysis)
        return "\n\n".join(parts)


@dataclass(frozen=True)
class Preference:
    """A judgement of a round's trained policies: the best and the worst, pairwise choices, a comment.

    The candidates judged are the round's trained ones and the best so far, so
    the best of a preference is the best of all rounds. `pairs` holds
    (preferred, rejected) ids.
    """

    round: int
    best_id: str
    worst_id: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    comment: str = ""
    source: PreferenceSourceName = "human"
    candidate_ids: tuple[str, ...] = ()  # those that were shown
    at: str = ""

    def problem(self, shown: list[str]) -> str | None:
        """Why this preference cannot be used for a round that showed `shown`, or None when it can."""
        named = [self.best_id, *([self.worst_id] if self.worst_id else []), *(i for pair in self.pairs for i in pair)]
        unknown = sorted({i for i in named if i not in shown})
        if unknown:
            return f"it names {', '.join(unknown)}, which the round did not show (it showed {', '.join(shown)})"
        if self.worst_id == self.best_id:
            return f"{self.best_id} cannot be both the best and the worst"
        if any(a == b for a, b in self.pairs):
            return "a pairwise choice compares a candidate with itself"
        return None


@dataclass(frozen=True)
class ScoreProposal:
    """A task score an LLM proposed for a task given in words, its check on real states, and what became of it.

    `text` is the proposal as task-file TOML (its `[fitness]` table and an optional `success_threshold`), as
    proposed or as the person edited it. The check ran it on a random policy's and a still policy's episode.
    """

    text: str
    fitness: Fitness | None  # None when no usable score came of it
    success_threshold: float | None = None
    random_score: float | None = None  # one episode of random actions
    still_score: float | None = None  # one episode of zero actions
    decision: Literal["accepted", "edited", "rejected", "unusable"] = "unusable"
    decided_by: str = ""  # "a person at the terminal", "--accept-score (the LLM's measure, trusted)", ...
    problem: str | None = None  # why it was unusable
    at: str = ""

    @property
    def adopted(self) -> bool:
        """Whether the run took it as its trusted fitness."""
        return self.decision in ("accepted", "edited") and self.fitness is not None

    def decided(self, decision: Literal["accepted", "edited", "rejected"], by: str) -> "ScoreProposal":
        """This proposal with a decision on it, by whom (a person at the terminal, --accept-score) and now."""
        return replace(self, decision=decision, decided_by=by, at=now_iso())


@dataclass(frozen=True)
class PreferenceRequest:
    """The loop waits for a person: which candidates of a round to judge, and where the page is."""

    round: int
    candidate_ids: tuple[str, ...]  # the round's trained candidates, and the best so far first when there is one
    page_url: str
    at: str = ""


@dataclass(frozen=True)
class RoundResult:
    """The end of a round: its best candidate, the best so far, and what the next round is told."""

    round: int
    candidate_ids: tuple[str, ...]
    best_id: str | None  # this round's best trained candidate
    best_so_far_id: str | None
    feedback: Feedback | None  # on the best so far
    lessons: tuple[str, ...]  # one line per candidate that did not work
    steps_saved: int = 0  # training steps not spent, thanks to pre-screening
    steps_trained: int = 0  # env steps the round's finished trainings took (each candidate's last slice counts all)
    halving_steps_saved: int = 0  # steps successive halving did not spend: the budget less each stopped one's steps
    confirmation_steps: int = 0  # steps --confirm-seeds spent training the candidates near the best on more seeds


@dataclass(frozen=True)
class FinalResult:
    """The best reward re-trained over several seeds and scored against the human and sparse baselines."""

    candidate_id: str
    seeds: tuple[int, ...]
    fitness: tuple[float | None, ...]  # held-out fitness per seed (None: the task has no fitness)
    scores: tuple[float | None, ...]  # human-normalized score per seed, against that seed's baselines
    fitness_mean: float | None = None
    fitness_std: float | None = None
    score_mean: float | None = None  # the normalized score of the mean fitness, against the mean baselines
    score_std: float | None = None  # the fitness's spread over seeds, on the normalized scale
    human_fitness: float | None = None  # baselines' mean held-out fitness over the same seeds
    sparse_fitness: float | None = None
    success_rate: float | None = None
    # Each baseline's spread: over seeds, or with one seed over its held-out episodes.
    human_spread: float | None = None
    sparse_spread: float | None = None
    human_source: str = ""  # the human reward's file, or "environment" for the environment's own reward
    # The human baseline scored worse than the sparse one: the scale then runs from the better baseline (0),
    # and above 0 means better than both, while 1 no longer "matches the human reward".
    human_worse: bool = False

    @property
    def baselines_apart(self) -> bool:
        """Whether the human and sparse baselines differ by more than their spreads: only then does the
        normalized score, measured against the gap between them, mean anything."""
        if self.human_fitness is None or self.sparse_fitness is None:
            return False
        spread = (self.human_spread or 0.0) + (self.sparse_spread or 0.0)
        return abs(self.human_fitness - self.sparse_fitness) > spread

    @property
    def human_name(self) -> str:
        """What the human baseline is, in words."""
        return "the environment's own reward" if self.human_source in ("", "environment") else "the hand-written reward"

    def normalized_sentence(self) -> str | None:
        """The human-normalized score as a person should read it; None where there is no score at all."""
        if self.score_mean is None or self.human_fitness is None:
            return None
        if not self.baselines_apart:
            return (
                f"not meaningful at this budget: {self.human_name} scored {self.human_fitness:.4g} "
                f"± {self.human_spread or 0.0:.2g} and the task score alone {self.sparse_fitness:.4g} "
                f"± {self.sparse_spread or 0.0:.2g}, closer than their spreads, so a scale between them is noise"
            )
        if self.human_worse:
            return (
                f"{self.score_mean:.3f} ± {self.score_std:.3f} (here {self.human_name} scored {self.human_fitness:.4g}, "
                f"worse than the task score alone, {self.sparse_fitness:.4g}: above 0 is better than both)"
            )
        return f"{self.score_mean:.3f} ± {self.score_std:.3f}"


@dataclass(frozen=True)
class RecipeResult:
    """The run's best reward and both baselines re-trained under another recipe (`autoreward evaluate`)."""

    recipe: Recipe
    final: FinalResult  # scored as the final evaluation is: per seed, against that seed's baselines


# --- reports -------------------------------------------------------------------


@dataclass(frozen=True)
class LLMTotals:
    """A run's LLM use: every call, those not answered from the cache, those of them a service answered
    (a replayed transcript and a person answering by hand are not paid for), and what those cost."""

    calls: int = 0
    paid_calls: int = 0  # answered by a model service, not from the cache, a replay or a person
    fresh_calls: int = 0  # not answered from the cache
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class RunSummary:
    """A design run as its index holds it: what `autoreward runs` and the review page's list show."""

    path: str  # the run folder
    id: str
    task: str
    env: str
    created: str | None
    status: str
    best_candidate: str | None = None
    best_fitness: float | None = None
    score_mean: float | None = None
    score_std: float | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class FinalTraining:
    """One seed of the final evaluation: its training (None while it is not done) and where it lives."""

    seed: int
    training: TrainingResult | None
    folder: str  # relative to the run folder: final/seed_<k>, or the candidate's own training for the round's seed


@dataclass(frozen=True)
class RunFacts:
    """Everything a run's reports show, read once from its folder: one gathering, then Markdown or HTML."""

    path: str  # the run folder
    config: RunConfig
    candidates: tuple[Candidate, ...]  # in round and index order
    rounds: tuple[RoundResult, ...]  # finished rounds
    final: FinalResult | None
    final_trainings: tuple[FinalTraining, ...]
    llm: LLMTotals
    # Each trained candidate's training folder (where its video.mp4 is), relative to the run folder.
    training_folders: dict[str, str] = field(default_factory=dict)
    preferences: tuple[Preference, ...] = ()  # the rounds' recorded preferences (feedback other than fitness)
    recipes: tuple[RecipeResult, ...] = ()  # the best reward under other recipes (`autoreward evaluate`)
    score_proposal: ScoreProposal | None = None  # a task given in words: the score an LLM proposed, and its fate
    # The frames of each candidate's video a watching judge saw, relative to the run folder.
    judge_frames: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def preference(self, round_number: int) -> Preference | None:
        return next((p for p in self.preferences if p.round == round_number), None)
