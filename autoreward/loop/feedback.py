"""Feedback for the next round: reward reflection, the trajectory summary, and the analyzer's reading.

Reward reflection (Eureka) shows each reward component's statistics over
training beside the task score and episode lengths. The trajectory summary
shows what the trained policy did in held-out episodes (`trajectory.py`).
The analyzer, an LLM, reads that summary against the task and names likely
failure causes. Lessons are one line per candidate that did not work, so the
designer does not repeat a mistake.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

from autoreward.config import LoopConfig, Task
from autoreward.llm.backends import LLM, Image, Message, ask
from autoreward.llm.prompts import Prompts
from autoreward.records import Candidate, Feedback, Preference, TrainingResult
from autoreward.sim.trajectory import summary_text


def reflection_text(
    prompts: Prompts, task: Task, training: TrainingResult, show_score: bool = True, candidate_id: str = ""
) -> str:
    """The reward-reflection message for one training (the task score, never its definition).

    With `show_score` off (the round was judged by preference) the task score, the success rate and the
    reward-hacking alarm (which compares with the task score) are left out too.
    """
    curve = training.curve
    names = sorted({name for point in curve for name in point.components})
    components = {name: [p.components[name] for p in curve if name in p.components] for name in names}
    evaluation = training.evaluation
    higher = task.fitness.higher_is_better if task.fitness else True
    scores = [p.fitness for p in curve if p.fitness is not None]
    return prompts.render(
        "reflection",
        steps=training.steps,
        episodes=len(evaluation.episodes),
        fitness=evaluation.fitness_mean if show_score else None,
        higher_is_better=higher,
        success_rate=evaluation.success_rate if show_score else None,
        episode_length=evaluation.length_mean,
        curve=curve,
        components=components,
        returns=component_returns(training),
        task_score_curve=[f"{s:.3g}" for s in scores] if show_score else [],
        score_improved=_improved(scores, higher) if show_score and len(scores) >= 2 else None,
        length_curve=[f"{p.episode_length:.0f}" if p.episode_length is not None else "-" for p in curve],
        hacking=hacking_alarm(candidate_id or "this reward", training, higher) if show_score else None,
        form=training.form,
        form_report=training.form_report,
    )


def component_returns(training: TrainingResult) -> list[dict]:
    """Each component's mean return per held-out episode and its share of all components' returns (by size)."""
    episodes = training.evaluation.episodes
    names = sorted({name for e in episodes for name in e.component_returns})
    means = {name: sum(e.component_returns.get(name, 0.0) for e in episodes) / max(len(episodes), 1) for name in names}
    scale = sum(abs(v) for v in means.values()) or 1.0
    return [{"name": name, "mean": value, "share": abs(value) / scale} for name, value in means.items()]


def _improved(scores: list[float], higher_is_better: bool) -> bool:
    """Whether the task score over training moved the right way by more than a tenth of its range seen."""
    spread = max(scores) - min(scores)
    change = (scores[-1] - scores[0]) * (1 if higher_is_better else -1)
    return spread > 0 and change > 0.1 * max(spread, abs(scores[0]) * 0.05, 1e-9)


# The hacking alarm's thresholds. A fall counts when it is more than FALL_FRACTION of the task score's range
# over the training (the real case the alarm was built for gave back three quarters: from 28 down to 7.5) and
# more than NOISE_MULTIPLE times the noise of one point (on a plateau the range is all noise). Five times, because
# the noise is estimated from only a few points and the peak is the highest of them: simulated on 10 points of
# pure noise under a rising reward, four times fired on 7% of curves and five on 2.5%, while a rise to 28 and
# fall to 7.5 with a noise of 2 still fired on 99%. The reward counts as rising when it gained more than
# REWARD_RISE of the larger of its range and its size at the peak. The reward is a mean over thousands of steps,
# so it needs no noise test (and a smooth reward's bend would read as noise).
FALL_FRACTION = 0.25
NOISE_MULTIPLE = 5.0
REWARD_RISE = 0.05


def hacking_alarm(
    name: str, training: TrainingResult, higher_is_better: bool, fall_fraction: float = FALL_FRACTION
) -> str | None:
    """One sentence when a training's task score fell from its peak while its reward kept rising.

    Read from the curve's points whose score comes from ended episodes (a partial score, from episodes still
    running, is not comparable) and from the held-out score. The peak is the best point (the lowest where lower
    is better). The alarm fires when the reward rose from the peak's point to the last, and either the last two
    points both lie below the peak (one low point may be noise) or the held-out score does, by more than
    `fall_fraction` of the score's range over the curve and beyond its noise (`_margin`). The reward is
    compared from the peak on, not over the whole training: a reward nearly always rises over a training, so
    only its rise while the task score fell says the policy traded the task for the reward. It is read per step
    and per episode (per step times the episodes' mean length): a policy paid per step can earn more by making
    its episodes last, as one that rocks a car forever instead of arriving at the flag does, at the same reward
    per step. The range, not the peak's size, is the scale because scores may sit near 0 or below it (minus
    the steps taken), where a fraction of the peak means nothing. Fewer than three points with a score give no
    alarm.
    """
    points = [p for p in training.curve if p.fitness is not None and p.episodes > 0 and not p.fitness_partial]
    if len(points) < 3:
        return None
    sign = 1.0 if higher_is_better else -1.0
    scores = [sign * p.fitness for p in points]
    top = max(range(len(scores)), key=scores.__getitem__)  # the first best point
    peak, last = points[top], points[-1]
    margin = _margin(scores, fall_fraction, skip=top)
    per_step = [p.reward_mean for p in points]
    lengths = [p.episode_length for p in points]
    per_episode = [r * n for r, n in zip(per_step, lengths) if n is not None]
    by_step = _rose(per_step, top)
    rose = by_step or (len(per_episode) == len(points) and _rose(per_episode, top))
    fell = all(scores[top] - s > margin for s in scores[-2:])
    held = training.evaluation.fitness_mean
    held_fell = held is not None and scores[top] - sign * held > margin
    if not (rose and (fell or held_fell)):
        return None
    if fell:
        end = f"{'fell' if higher_is_better else 'rose'} to {last.fitness:.3g} by step {last.step}"
        end += f" ({held:.3g} on held-out episodes)" if held is not None else ""
    else:
        end = f"ended at {last.fitness:.3g}, but its final policy scored {held:.3g} on held-out episodes"
    if by_step:
        paid = f"its reward per step rose from {peak.reward_mean:.3g} at that step to {last.reward_mean:.3g}"
    else:
        paid = (
            f"its reward per episode rose from about {per_episode[top]:.3g} at that step to {per_episode[-1]:.3g}, "
            f"its episodes from {lengths[top]:.0f} to {lengths[-1]:.0f} steps"
        )
    order = "" if higher_is_better else " (lower is better)"
    return (
        f"Reward hacking: the task score of {name}'s training episodes{order} was best at {peak.fitness:.3g} at "
        f"step {peak.step} and {end}, while {paid}; the policy learned something the reward pays for and the task "
        "does not want."
    )


def _rose(rewards: list[float], top: int) -> bool:
    """Whether a reward gained, from the point `top` to the last, more than REWARD_RISE of the larger of its
    range over the curve and its size at `top`."""
    return rewards[-1] - rewards[top] > REWARD_RISE * max(max(rewards) - min(rewards), abs(rewards[top]))


def _margin(values: list[float], fraction: float, skip: int) -> float:
    """How far the task score must fall to count: `fraction` of the curve's range, and NOISE_MULTIPLE times
    the noise of one point.

    The noise is read from each inner point's distance to the midpoint of its two neighbours, which a straight
    or gently bending trend leaves near 0 (for independent noise its mean square is 1.5 times a point's variance).
    The point `skip` (the peak, whose distance there is its own height, not noise) is left out.
    """
    gaps = [values[i] - (values[i - 1] + values[i + 1]) / 2 for i in range(1, len(values) - 1) if i != skip]
    noise = math.sqrt(sum(g * g for g in gaps) / (1.5 * len(gaps))) if gaps else 0.0
    return max(fraction * (max(values) - min(values)), NOISE_MULTIPLE * noise)


def behaviour(candidate: Candidate, show_score: bool = True) -> str:
    """What a candidate's policy did, in one line from its held-out episodes (for a lesson about it)."""
    evaluation = candidate.training.evaluation
    parts = [f"task score {evaluation.fitness_mean:.3g}"] if show_score and evaluation.fitness_mean is not None else []
    summary = evaluation.summary
    if summary is not None:
        parts.append(
            f"episodes of {summary.length_mean:.0f} steps, {summary.terminated} of {summary.episodes} ended early"
        )
        moved = max(summary.quantities, key=lambda q: abs(q.end - q.start) / max(q.max - q.min, 1e-9), default=None)
        if moved is not None and moved.max > moved.min:
            unit = f" {moved.unit}" if moved.unit else ""
            parts.append(f"{moved.name} went from {moved.start:.3g} to {moved.end:.3g}{unit} over an episode")
    return "; ".join(parts)


def build_feedback(
    llm: LLM,
    prompts: Prompts,
    task: Task,
    config: LoopConfig,
    candidate: Candidate,
    show_score: bool = True,
    frames: Sequence[Image] = (),
) -> Feedback:
    """Feedback on a trained candidate; asks the analyzer when the config has it on.

    With `frames` (of the policy's video), the analyzer sees them beside the numbers: `llm` is then the watching
    judge's, the vision model's (`loop.design_run`)."""
    training = candidate.training
    summary = training.evaluation.summary
    if summary is not None and not show_score:
        # A quantity the reward reads can be the hidden score itself (a score that is the mean command of one
        # actuator, a reward that reads that command): with the score hidden, the reads are left out.
        summary = replace(summary, reads=())
    trajectory = summary_text(summary) if summary else "(no episode was recorded)"
    analysis = None
    if config.analyzer and candidate.round < config.rounds:  # the last round's reading would feed no round
        message = prompts.render(
            "analyzer",
            task_description=task.description,
            program=candidate.code,
            trajectory_summary=trajectory,
            frames=len(frames),
        )
        tag = f"r{candidate.round}/c{candidate.index}/analyzer"
        analysis = ask(llm, config, [Message("user", message, tuple(frames))], tag, temperature=0.0)
        analysis = analysis.strip()
    return Feedback(
        candidate.id, reflection_text(prompts, task, training, show_score, candidate.id), trajectory, analysis
    )


def preference_text(prompts: Prompts, preference: Preference, candidates: list[Candidate]) -> str:
    """What the designer is told of a preference: who preferred which, the rejected program, the comment."""
    by_id = {c.id: c for c in candidates}
    rejected = by_id.get(preference.worst_id) if preference.worst_id else None
    return prompts.render(
        "preference",
        source=preference.source,
        round=preference.round,
        preferred_id=preference.best_id,
        shown=list(preference.candidate_ids) or sorted(by_id),
        rejected_id=rejected.id if rejected else None,
        rejected_program=rejected.code if rejected else None,
        pairs=[{"preferred": a, "rejected": b} for a, b in preference.pairs],
        comment=preference.comment.strip(),
    ).strip()


def lessons(
    candidates: list[Candidate], best: Candidate | None, higher_is_better: bool, show_scores: bool = True
) -> tuple[str, ...]:
    """One line per candidate that failed, was rejected, or trained worse than the best.

    With `show_scores` off (preference feedback) a trained candidate's line names no task score.
    """
    lines = []
    for candidate in candidates:
        if best is not None and candidate.id == best.id:
            continue
        if candidate.status in ("failed_check", "rejected", "prescreened_out", "training_failed"):
            lines.append(f"{candidate.id}: {_first_sentence(candidate.message)}")
        elif candidate.status == "trained" and best is not None and not show_scores:
            terms = ", ".join(sorted(candidate.training.curve[-1].components)) if candidate.training.curve else ""
            lines.append(
                f"{candidate.id} (terms: {terms}) was trained, but its policy was not preferred to {best.id}'s; "
                f"its policy: {behaviour(candidate, show_score=False)}"
            )
        elif candidate.status == "trained" and candidate.fitness is not None and best is not None:
            terms = ", ".join(sorted(candidate.training.curve[-1].components)) if candidate.training.curve else ""
            direction = "lower" if higher_is_better else "higher"
            early = (
                ""
                if candidate.stopped_at is None
                else (f" after {candidate.stopped_at} steps (stopped early: it was among the weakest then)")
            )
            alarm = hacking_alarm(candidate.id, candidate.training, higher_is_better)
            lines.append(
                f"{candidate.id} (terms: {terms}) reached a task score of {candidate.fitness:.3g}{early}, "
                f"{direction} than the best's {best.fitness:.3g}; its policy: {behaviour(candidate, show_score=False)}"
                + (f". {alarm}" if alarm else "")
            )
    return tuple(lines)


def _first_sentence(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(no reason recorded)"
    return line if len(line) <= limit else line[:limit] + "..."
