"""Feedback for the next round: reward reflection, the trajectory summary, and the analyzer's reading.

Reward reflection (Eureka) shows each reward component's statistics over
training beside the task score and episode lengths. The trajectory summary
shows what the trained policy did in held-out episodes (`trajectory.py`).
The analyzer, an LLM, reads that summary against the task and names likely
failure causes. Lessons are one line per candidate that did not work, so the
designer does not repeat a mistake.
"""

from __future__ import annotations

from autoreward.config import LoopConfig, Task
from autoreward.llm.backends import LLM, Message, ask
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


def hacking_alarm(name: str, training: TrainingResult, higher_is_better: bool) -> str | None:
    """One sentence when, over a training, the reward's own return rose while the task score fell: the reward
    is being gamed. Read from the curve's training episodes (the last point against the first with data)."""
    points = [p for p in training.curve if p.fitness is not None and p.episodes > 0]
    if len(points) < 3:
        return None
    first, last = points[0], points[-1]
    rose = last.reward_mean > first.reward_mean + 0.1 * abs(first.reward_mean) + 1e-9
    worse = (last.fitness - first.fitness) * (1 if higher_is_better else -1) < -0.05 * max(abs(first.fitness), 1e-9)
    if not (rose and worse):
        return None
    return (
        f"Reward hacking: over {name}'s training its reward per step rose from {first.reward_mean:.3g} to "
        f"{last.reward_mean:.3g} while the task score of its training episodes fell from {first.fitness:.3g} to "
        f"{last.fitness:.3g}; the policy learned something the reward pays for and the task does not want."
    )


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
    llm: LLM, prompts: Prompts, task: Task, config: LoopConfig, candidate: Candidate, show_score: bool = True
) -> Feedback:
    """Feedback on a trained candidate; asks the analyzer when the config has it on."""
    training = candidate.training
    summary = training.evaluation.summary
    trajectory = summary_text(summary) if summary else "(no episode was recorded)"
    analysis = None
    if config.analyzer and candidate.round < config.rounds:  # the last round's reading would feed no round
        message = prompts.render(
            "analyzer", task_description=task.description, program=candidate.code, trajectory_summary=trajectory
        )
        tag = f"r{candidate.round}/c{candidate.index}/analyzer"
        analysis = ask(llm, config, [Message("user", message)], tag, temperature=0.0).strip()
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
