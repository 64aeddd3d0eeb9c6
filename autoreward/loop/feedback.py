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


def reflection_text(prompts: Prompts, task: Task, training: TrainingResult, show_score: bool = True) -> str:
    """The reward-reflection message for one training (the task score, never its definition).

    With `show_score` off (the round was judged by preference) the task score is left out too.
    """
    curve = training.curve
    names = sorted({name for point in curve for name in point.components})
    components = {name: [p.components[name] for p in curve if name in p.components] for name in names}
    evaluation = training.evaluation
    return prompts.render(
        "reflection",
        steps=training.steps,
        episodes=len(evaluation.episodes),
        fitness=evaluation.fitness_mean if show_score else None,
        higher_is_better=task.fitness.higher_is_better if task.fitness else True,
        episode_length=evaluation.length_mean,
        curve=curve,
        components=components,
        task_score_curve=[f"{p.fitness:.3g}" for p in curve if p.fitness is not None] if show_score else [],
        length_curve=[f"{p.episode_length:.0f}" if p.episode_length is not None else "-" for p in curve],
    )


def build_feedback(
    llm: LLM, prompts: Prompts, task: Task, config: LoopConfig, candidate: Candidate, show_score: bool = True
) -> Feedback:
    """Feedback on a trained candidate; asks the analyzer when the config has it on."""
    training = candidate.training
    summary = training.evaluation.summary
    trajectory = summary_text(summary) if summary else "(no episode was recorded)"
    analysis = None
    if config.analyzer:
        message = prompts.render(
            "analyzer", task_description=task.description, program=candidate.code, trajectory_summary=trajectory
        )
        tag = f"r{candidate.round}/c{candidate.index}/analyzer"
        analysis = ask(llm, config, [Message("user", message)], tag, temperature=0.0).strip()
    return Feedback(candidate.id, reflection_text(prompts, task, training, show_score), trajectory, analysis)


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
                f"{candidate.id} (terms: {terms}) was trained, but its policy was not preferred to {best.id}'s"
            )
        elif candidate.status == "trained" and candidate.fitness is not None and best is not None:
            terms = ", ".join(sorted(candidate.training.curve[-1].components)) if candidate.training.curve else ""
            direction = "lower" if higher_is_better else "higher"
            early = (
                ""
                if candidate.stopped_at is None
                else (f" after {candidate.stopped_at} steps (stopped early: it was among the weakest then)")
            )
            lines.append(
                f"{candidate.id} (terms: {terms}) reached a task score of {candidate.fitness:.3g}{early}, "
                f"{direction} than the best's {best.fitness:.3g}"
            )
    return tuple(lines)


def _first_sentence(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(no reason recorded)"
    return line if len(line) <= limit else line[:limit] + "..."
