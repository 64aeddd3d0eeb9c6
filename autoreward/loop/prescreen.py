"""Pre-screening a reward without training it (CARD's trajectory preference evaluation), knowing its uncertainty.

Trained candidates of earlier rounds leave held-out episodes behind: a
sample of their transitions (`transitions.npz`) and each episode's task
score. Before a new candidate is trained, a worker scores those stored
transitions with its reward (its mean reward per step on each episode), and
`verdict` compares that ranking with the task scores. A reward that
reverses the task ranks nearly every pair the wrong way round and is caught
this way for the cost of a check; the designer is told which pairs it got
wrong. Pre-screening is off by default (`--prescreen` turns it on): on a
hard task it mostly sees failures, and there it blocked the best reward of
a measured run. The rule is built so that it drops a candidate only on
clear evidence:

- **A pair counts only if its task scores differ by a margin on the task's
  own scale.** Where the task has a success threshold, the margin is a tenth
  of the threshold's magnitude (`MARGIN_FRACTION`): what counts as "a clear
  difference" is then fixed by the task's author, not by the pool, so a pool
  of failures a few steps apart (1 to 8 of 1000 steps, as measured on
  Walker2d standing on one leg) gives no pair against any threshold above
  70. Where it has none (a threshold of 0
  has no magnitude either), the margin is a tenth of the spread between the
  worst and best task scores seen: the stored episodes, and the episode of
  random actions and the one of standing still where a run has them. Those
  two are stored only for a task given in words whose proposed score was
  adopted (`score_proposal.json`, one episode each; the driver passes them
  as `references`); a task file's check plays them but keeps nothing, so
  for it the scale is the larger of the pool's spread and the magnitude of
  its best score, which keeps a pool of near-equal scores far from zero
  from calling tiny gaps clear. No reference scores are made up.
- **A candidate is dropped only when its disagreement is significant.**
  Under the null hypothesis that it ranks a counted pair the right way with
  the chance probability (`chance`, 0.5: the run's `prescreen_threshold`),
  the one-sided binomial tail P(X <= right) must be below `SIGNIFICANCE`
  (0.01). The pairs are not independent: they share episodes, and the
  m(m-1)/2 pairs of m episodes are all fixed by the order of m numbers. So the test counts
  `effective_pairs` = min(pairs, m - 1), m the distinct episodes in counted
  pairs, with the right ones scaled to that count and rounded up (towards
  not dropping). This is conservative: over all pairs of m episodes,
  Kendall's S (pairs ranked right less pairs ranked wrong) has, at chance,
  the variance that 9m(m-1)/(2(2m+5)) independent pairs would give, which is
  at least m - 1 for m >= 2 (with pairs left out by the margin the
  exact figure is not known; m - 1 is a choice, not a derivation). The cost:
  with fewer than 8 such episodes nothing can be dropped at 0.01, as even a
  perfectly reversed ranking has p = 0.5^(m-1).
- **Nothing is dropped while every stored episode is a failure**, where the
  task has a success threshold (`Fitness.succeeded`): among failures, the
  task score says how a policy failed, which a good reward need not rank the
  same way. A task without a threshold has no notion of failure, so this
  rule needs one and does not apply there; the margin and the test remain.
- **A round never drops more than half of its candidates on the pre-screen
  alone** (`over_the_half`, applied by the driver): of the candidates that
  reached the pre-screen ready, those dropped beyond half are trained after
  all, best agreement first.

`Screening` keeps what a person needs to read the verdict: the pairs
counted, the agreement, the p-value, the margin and where it came from, and
the verdict (`VERDICTS`: dropped, or why not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from autoreward.config import Task, WorkerLimits
from autoreward.errors import Interrupted, WorkerError, WorkerFileError
from autoreward.loop.runner import Runner
from autoreward.records import Candidate
from autoreward.sandbox import worker_files
from autoreward.sandbox.worker_files import ARRAYS_BYTES
from autoreward.serialize import from_dict, to_dict

MARGIN_FRACTION = 0.1  # of the task's scale: the gap in task score a pair needs to count
SIGNIFICANCE = 0.01  # a candidate is dropped when its binomial p-value is below this

# What the pre-screen decided, and why it did not drop: a closed set, said in words by `VERDICTS`.
Verdict = Literal["dropped", "not_scored", "no_pairs", "all_failures", "not_significant", "half_rule"]
VERDICTS: dict[str, str] = {
    "dropped": "not trained: it ranks the stored episodes against their task scores, significantly",
    "not_scored": "not pre-screened: the stored episodes could not be scored",
    "no_pairs": "not pre-screened: no two stored episodes differ clearly in task score",
    "all_failures": "kept: every stored episode is a failure, so their ranking is not trusted",
    "not_significant": "kept: its disagreement is not significant",
    "half_rule": "kept: a round drops at most half of its candidates on the pre-screen alone",
}


@dataclass(frozen=True)
class LabelledEpisode:
    """One stored held-out episode: where its transitions are, which episode it is, and its task score."""

    source: str  # the candidate that produced it
    file: str
    episode: int
    fitness: float


@dataclass(frozen=True)
class Screening:
    """How a reward's ranking of stored episodes compares with their task scores, and what was decided."""

    agreement: float | None  # share of counted pairs ranked the right way; None: no pair counted, or not scored
    pairs: int  # pairs of episodes whose task scores differ by more than `margin`
    wrong: tuple[str, ...]  # the worst mistakes in words, for the designer (or why it could not be scored)
    verdict: Verdict = "not_scored"
    p_value: float | None = None  # P(this few right | it ranks at chance), over `effective_pairs`
    effective_pairs: int = 0  # min(pairs, distinct episodes in them - 1): pairs share episodes
    margin: float | None = None  # the task-score gap a pair needs, in the task score's units
    margin_from: str = ""  # what the margin is a fraction of, in words

    def rejects(self) -> bool:
        """Whether the candidate is not trained."""
        return self.verdict == "dropped"

    def summary(self) -> str:
        """One short line: the agreement, the pairs, the p-value and the verdict (for notes and messages)."""
        if self.agreement is None:
            return VERDICTS[self.verdict]
        return (
            f"agreed with the task score on {self.agreement:.0%} of {self.pairs} pairs "
            f"(p = {self.p_value:.2g} against chance); {VERDICTS[self.verdict]}"
        )


def labelled_episodes(candidates: list[Candidate], transitions_of) -> list[LabelledEpisode]:
    """The stored episodes of trained candidates (those halving stopped early too), with their task scores.

    `transitions_of(candidate)` is the file of its (last) training's held-out transitions."""
    found = []
    for candidate in candidates:
        if candidate.status != "trained" or candidate.training is None:
            continue
        path = transitions_of(candidate)
        if not path.exists():
            continue
        for index, episode in enumerate(candidate.training.evaluation.episodes):
            if episode.fitness is not None:
                found.append(LabelledEpisode(candidate.id, str(path), index, episode.fitness))
    return found


def screen(
    task: Task,
    code: str,
    episodes: list[LabelledEpisode],
    output_dir: Path,
    runner: Runner,
    references: Sequence[float] = (),
    chance: float = 0.5,
    shown: int = 3,
) -> Screening:
    """Score the stored episodes with `code` in a worker and judge its ranking against the task scores.

    `references`: task scores of reference episodes (random actions, standing still) that set the margin's
    scale where the task has no success threshold; `chance`: the agreement of a reward that ranks at chance.
    A scoring that fails is a Screening without agreement that says why; nothing is dropped on it."""
    try:
        rewards = stored_rewards(task, code, episodes, output_dir, runner)
    except WorkerError as error:
        return Screening(None, 0, (str(error),))
    return verdict(task, episodes, rewards, references, chance, shown)


def stored_rewards(
    task: Task,
    code: str,
    episodes: Sequence[LabelledEpisode],
    output_dir: Path,
    runner: Runner,
) -> np.ndarray:
    """Each stored episode's mean reward per step under `code`, scored in a (jailed) worker in `output_dir`.

    Raises WorkerError (one sentence) when the episodes cannot be read or scored."""
    output_dir = Path(output_dir).resolve()
    inputs = output_dir / "inputs"
    worker_files.clear_folder(inputs)
    files = sorted({e.file for e in episodes})
    # The worker sees only its own folder (the jail), wherever it runs (an executor may move the folder to
    # another machine), so its inputs are copied there and named relative to it: its working folder.
    local = {}
    for number, file in enumerate(files):  # through the reader of worker files: a link there is not followed
        local[file] = f"{inputs.name}/{number}.npz"
        try:
            worker_files.copy_file(Path(file).parent, Path(file).name, output_dir / local[file], ARRAYS_BYTES)
        except (WorkerFileError, OSError) as error:
            raise WorkerError(f"could not read the stored episodes: {error}") from None
    payload = {"task": to_dict(task), "code": code, "files": [local[f] for f in files]}
    limits = WorkerLimits(wall_seconds=300.0, idle_seconds=60.0, memory_bytes=4 * 1024**3)
    outcome = runner.run("score", payload, output_dir, limits, task)
    if outcome.status == "interrupted":
        raise Interrupted(message=outcome.message)
    if outcome.status != "ok":
        raise WorkerError(f"could not score the stored episodes: {outcome.message}")
    try:  # {file: {episode: mean reward per step}}, from a worker that ran the program: checked, every entry there
        means = worker_files.checked_result(outcome.result, dict[str, dict[str, float]], "the scoring worker's result")
        return np.array([means[local[e.file]][str(e.episode)] for e in episodes], dtype=np.float64)
    except (WorkerFileError, KeyError) as error:
        raise WorkerError(f"could not score the stored episodes: {error}") from None


def verdict(
    task: Task,
    episodes: Sequence[LabelledEpisode],
    rewards: Sequence[float],
    references: Sequence[float] = (),
    chance: float = 0.5,
    shown: int = 3,
) -> Screening:
    """Judge a reward's mean reward per step on `episodes` against their task scores (the module's rule)."""
    if not 0.0 < chance < 1.0:
        raise ValueError(f"the pre-screen's chance agreement must be between 0 and 1, not {chance}")
    rewards = np.asarray(rewards, dtype=np.float64)
    higher = task.fitness is None or task.fitness.higher_is_better
    sign = 1.0 if higher else -1.0
    fitness = sign * np.array([e.fitness for e in episodes], dtype=np.float64)  # higher is better from here on
    margin, margin_from = _margin(task, fitness, sign * np.asarray(references, dtype=np.float64))
    right, ties, mistakes, involved = 0, 0, [], set()
    for i in range(len(episodes)):
        for j in range(i + 1, len(episodes)):
            if abs(fitness[i] - fitness[j]) <= margin:
                continue  # a near tie says nothing about the ranking
            better, worse = (i, j) if fitness[i] > fitness[j] else (j, i)
            involved.update((i, j))
            if rewards[better] > rewards[worse]:
                right += 1
            elif np.isclose(rewards[better], rewards[worse], rtol=1e-9, atol=1e-12):
                ties += 1  # a reward that cannot tell the two apart: half right, as at chance
            else:
                mistakes.append((fitness[better] - fitness[worse], better, worse))
    pairs = right + ties + len(mistakes)
    agreeing = right + ties / 2
    facts = dict(margin=margin, margin_from=margin_from)
    failures = (
        task.fitness is not None
        and task.success_threshold is not None
        and not any(task.fitness.succeeded(e.fitness, task.success_threshold) for e in episodes)
    )
    if pairs == 0:
        return Screening(None, 0, (), "all_failures" if failures else "no_pairs", **facts)
    effective = min(pairs, len(involved) - 1)
    effective_right = -(-(2 * right + ties) * effective // (2 * pairs))  # scaled to the effective count, rounded up
    p_value = binomial_tail(effective_right, effective, chance)
    if failures:
        decided = "all_failures"
    else:
        decided = "dropped" if p_value < SIGNIFICANCE else "not_significant"
    mistakes.sort(reverse=True)
    wrong = tuple(
        f"it gave {episodes[w].source}'s episode {episodes[w].episode} (task score {sign * fitness[w]:.3g}) a higher "
        f"mean reward per step ({rewards[w]:.3g}) than {episodes[b].source}'s episode {episodes[b].episode} "
        f"(task score {sign * fitness[b]:.3g}, reward {rewards[b]:.3g})"
        for _, b, w in mistakes[:shown]
    )
    return Screening(agreeing / pairs, pairs, wrong, decided, p_value, effective, **facts)


def _margin(task: Task, fitness: np.ndarray, references: np.ndarray) -> tuple[float, str]:
    """The gap in task score a pair needs: a fraction of the threshold's magnitude, else of the scores' spread."""
    if task.success_threshold:  # a threshold of 0 (or none) gives no scale
        return MARGIN_FRACTION * abs(task.success_threshold), "the success threshold's magnitude"
    if len(fitness) == 0:
        return 0.0, "no stored episode"
    if len(references):
        seen = np.concatenate([fitness, references])
        return MARGIN_FRACTION * float(seen.max() - seen.min()), "the spread of the stored, random and still episodes"
    spread, best = float(fitness.max() - fitness.min()), abs(float(fitness.max()))
    return MARGIN_FRACTION * max(spread, best), "the larger of the stored episodes' spread and best score's magnitude"


def binomial_tail(successes: int, trials: int, chance: float) -> float:
    """P(X <= successes) for X ~ Binomial(trials, chance): the one-sided p-value of this few successes."""
    if trials <= 0 or successes >= trials:
        return 1.0
    log_p, log_q = math.log(chance), math.log1p(-chance)
    # In logs: math.comb is exact, and its huge values for many trials would overflow a float.
    terms = (math.log(math.comb(trials, k)) + k * log_p + (trials - k) * log_q for k in range(successes + 1))
    return min(1.0, sum(math.exp(term) for term in terms))


def over_the_half(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The dropped candidates of one round to train after all, so that the pre-screen drops at most half.

    Of the candidates that reached the pre-screen ready (all but those that failed their check or review), at
    most half (rounded down) stay dropped; the others, best agreement first (then the larger p-value, then
    the earlier candidate), are returned. Read from the records alone, so a resumed round decides the same."""
    reached = [c for c in candidates if c.status not in ("failed_check", "rejected")]
    dropped = [c for c in candidates if c.status == "prescreened_out"]
    excess = len(dropped) - len(reached) // 2
    if excess <= 0:
        return []
    ranked = sorted(dropped, key=lambda c: (-(c.screening_agreement or 0.0), -(c.screening_p_value or 0.0), c.index))
    return ranked[:excess]


# --- inside the worker -------------------------------------------------------


def run_score_job(payload: dict[str, Any], output_dir: Path, channel) -> dict:
    """Mean reward per step of every stored episode, under the program in the payload: the mean over its kept
    transitions, each weighted by the steps it stands for (`sim.trajectory.TransitionSampler`)."""
    from autoreward.contract import forms
    from autoreward.sim.observation_state import state_layout
    from autoreward.sim.state import read_only
    from autoreward.task.files import make_env

    task = from_dict(Task, payload["task"])
    function = forms.load_as_reward(payload["code"])
    env = make_env(task)
    layout = state_layout(env, extras=task.extras)
    env.close()
    result = {}
    for file in payload["files"]:
        with np.load(file) as stored:
            before = {name: stored[f"before.{name}"].astype(np.float64) for name in layout.shapes}
            after = {name: stored[f"after.{name}"].astype(np.float64) for name in layout.shapes}
            action, episode = stored["action"], stored["episode"]
            # The steps each kept transition stands for (files stored before weights were kept: one each).
            weight = stored["weight"].astype(np.float64) if "weight" in stored.files else np.ones(len(episode))
        if getattr(layout, "discrete_actions", 0):  # stored as float32 like the rest; the reward sees integers
            action = action.astype(np.int64)
        channel.progress(stage="scoring", file=file)
        total, _ = function(layout.state(before), read_only(action), layout.state(after))
        total = np.asarray(total, dtype=np.float64)
        result[file] = {
            str(e): float(np.average(total[episode == e], weights=weight[episode == e])) for e in np.unique(episode)
        }
    return result
