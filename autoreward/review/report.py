"""The reports of a run: its records gathered once (`gather_run`), then told in Markdown or in HTML.

The task, then each round: every candidate with what the designer said it
changed and why, how its check and review went, and its task score; the
feedback the next round was given; then the final multi-seed scores and the
failure modes seen along the way (lessons and the analyzer's readings).
`reward_report` writes Markdown (the export's reward_report.md, `show`);
`html_report` (autoreward.review.html_report) one self-contained page with the
code, curves and videos.
"""

from __future__ import annotations

from dataclasses import asdict

from autoreward.config import Recipe
from autoreward.loop.feedback import hacking_alarm
from autoreward.loop.frames import frame_paths
from autoreward.loop.recipes import recipe_of
from autoreward.loop.run_store import RunStore
from autoreward.loop.training import finished_training
from autoreward.records import (
    Candidate,
    FinalResult,
    FinalTraining,
    Preference,
    RecipeResult,
    RoundResult,
    RunFacts,
    ScoreProposal,
    TrainingResult,
)
from autoreward.sim.trajectory import summary_text


def gather_run(store: RunStore) -> RunFacts:
    """Every record a report shows, read from the run folder; a run still going gives what is done so far."""
    config = store.config()
    candidates = store.candidates()
    rounds = [r for r in (store.load_round(n) for n in range(1, config.loop.rounds + 1)) if r is not None]
    final = store.load_final()
    folders = {c.id: _relative(store, store.training_dir(c)) for c in candidates}
    return RunFacts(
        path=str(store.path),
        config=config,
        candidates=tuple(candidates),
        rounds=tuple(rounds),
        final=final,
        final_trainings=_final_trainings(store, final, candidates, folders),
        llm=store.llm_totals(),
        training_folders=folders,
        preferences=tuple(p for p in (_recorded_preference(store, n) for n in range(1, config.loop.rounds + 1)) if p),
        recipes=tuple(store.recipe_results()),
        score_proposal=store.load_score_proposal(),
        judge_frames=_judge_frames(store, candidates),
    )


def _judge_frames(store: RunStore, candidates) -> dict[str, tuple[str, ...]]:
    found = {}
    for candidate in candidates:
        frames = frame_paths(store.frames_dir(candidate))
        if frames:
            found[candidate.id] = tuple(_relative(store, path) for path in frames)
    return found


def _recorded_preference(store: RunStore, round_number: int):
    """The round's preference; a file that is not one is not shown (the loop asks again and moves it aside)."""
    try:
        return store.load_preference(round_number)
    except ValueError:
        return None


def _final_trainings(store: RunStore, final, candidates, folders) -> tuple[FinalTraining, ...]:
    if final is None:
        return ()
    best = next((c for c in candidates if c.id == final.candidate_id), None)
    found = []
    for seed in final.seeds:
        folder = store.final_seed_dir(seed)
        training = finished_training(folder)
        if training is None and best is not None and best.training is not None and best.training.seed == seed:
            found.append(FinalTraining(seed, best.training, folders[best.id]))  # the round's own training
        else:
            found.append(FinalTraining(seed, training, _relative(store, folder)))
    return tuple(found)


def _relative(store: RunStore, path) -> str:
    return path.relative_to(store.path).as_posix()


def reward_report(store: RunStore) -> str:
    """The run told in Markdown."""
    return markdown_report(gather_run(store))


def markdown_report(facts: RunFacts) -> str:
    config = facts.config
    task = config.task
    candidates = list(facts.candidates)
    rounds = list(facts.rounds)
    final = facts.final
    totals = asdict(facts.llm)

    lines = [
        f"# Reward report: {task.id}",
        "",
        f"**Task.** {task.description}",
        "",
        f"Environment `{task.env_id}`; run `{config.run_id}`, created {config.created} with autoreward "
        f"{config.autoreward_version}; LLM: {config.llm.describe()}.",
        f"{config.loop.rounds} rounds of {config.loop.candidates} candidates, up to {config.loop.repair_attempts} "
        f"repairs each, critic {'on' if config.loop.critic else 'off'}; each trained with "
        f"{config.loop.budget.algo.upper()} for {config.loop.budget.steps} steps"
        + (f", by successive halving (eta {config.loop.halving_eta})." if config.loop.halving else ".")
        + (
            " The analyzer reads each round's best but the last round's: that reading would feed no round."
            if config.loop.analyzer and config.loop.rounds > 1
            else ""
        ),
        f"LLM calls: {totals['calls']} ({totals['fresh_calls']} not from cache, {totals['paid_calls']} paid), "
        f"{totals['prompt_tokens']} prompt and {totals['completion_tokens']} completion tokens"
        + (f", ${totals['cost_usd']:.4f}." if totals["cost_usd"] else "."),
    ]
    if task.fitness is not None:
        direction = "higher" if task.fitness.higher_is_better else "lower"
        lines += [
            "",
            f"**Task score** (trusted, never shown to the designer): {task.fitness.description}; "
            f"{direction} is better.",
        ]
    if facts.score_proposal is not None:
        lines += ["", *score_proposal_lines(facts.score_proposal)]
    if final is not None:
        lines += ["", "## Result", "", *_final_lines(final, config.loop.feedback)]
    if len(config.loop.forms) > 1:
        lines += ["", "## By reward form", "", *_form_lines(facts)]
    if final is not None and facts.recipes:
        lines += ["", "## Under other training recipes", "", *_recipe_lines(facts)]
    for result in rounds:
        lines += ["", f"## Round {result.round}", "", *_round_lines(result, candidates, facts)]
        preference = facts.preference(result.round)
        if preference is not None:
            lines += [
                "",
                f"**Preference** ({PREFERENCE_SOURCES[preference.source]}): {preference_sentence(preference)}",
            ]
            seen = [(i, facts.judge_frames[i]) for i in preference.candidate_ids if i in facts.judge_frames]
            if preference.source == "vlm" and seen:
                lines += ["", "Frames the judge saw:", ""]
                lines += [f"- {i}: " + " ".join(f"![{i}]({path})" for path in paths) for i, paths in seen]
    failures = _failure_modes(rounds)
    if failures:
        lines += ["", "## Failure modes seen", "", *failures]
    return "\n".join(lines) + "\n"


PREFERENCE_SOURCES = {
    "human": "a person",
    "llm": "an LLM judge",
    "vlm": "a vision model judge that watched frames of each video",
    "synthetic": "synthetic, from the task score",
}


def score_proposal_lines(proposal: ScoreProposal) -> list[str]:
    """The task score an LLM proposed for a task in words: its text, its check, and who decided what."""
    if proposal.decision == "unusable":
        head = f"**Proposed task score**: none usable ({proposal.problem}); the rounds were judged instead."
    elif proposal.adopted:
        head = f"**Proposed task score**, proposed by the LLM and {proposal.decision} by {proposal.decided_by}:"
    else:
        head = f"**Proposed task score**, {proposal.decision} by {proposal.decided_by}; the rounds were judged instead:"
    lines = [head, "", "```toml", proposal.text.rstrip("\n"), "```"]
    if proposal.random_score is not None and proposal.still_score is not None:
        lines += [
            "",
            f"On one episode of random actions it scored {proposal.random_score:.4g}, on one of standing still "
            f"{proposal.still_score:.4g}.",
        ]
    return lines


def preference_sentence(preference: Preference) -> str:
    """A round's preference in one line: the best, the worst, the pairwise choices, the comment."""
    parts = [f"best {preference.best_id}"]
    if preference.worst_id:
        parts.append(f"worst {preference.worst_id}")
    if preference.pairs:
        parts.append("chose " + ", ".join(f"{a} over {b}" for a, b in preference.pairs))
    if preference.candidate_ids:
        parts.append(f"of {', '.join(preference.candidate_ids)}")
    sentence = "; ".join(parts) + "."
    return sentence + (f' Comment: "{preference.comment}"' if preference.comment else "")


def chosen_by(feedback: str) -> str:
    """Who picked the best reward of a run without a task score, in words."""
    return {
        "human": "a person's preferences",
        "llm": "an LLM judge's preferences",
        "vlm": "a vision model judge's preferences",
    }.get(feedback, "an LLM judge")


def _final_lines(final: FinalResult, feedback: str) -> list[str]:
    if final.fitness_mean is None:
        return [
            f"The best reward, **{final.candidate_id}** (chosen by {chosen_by(feedback)}: this task has no "
            f"trusted score), was re-trained on seeds {list(final.seeds)}."
        ]
    per_seed = ", ".join(f"{f:.3g}" for f in final.fitness)
    lines = [
        f"The best reward, **{final.candidate_id}**, re-trained on seeds {list(final.seeds)}: task score "
        f"{final.fitness_mean:.4g} ± {final.fitness_std:.2g} (per seed: {per_seed}).",
        f"Human baseline ({final.human_name}): {final.human_fitness:.4g}; sparse reward (the task score alone): "
        f"{final.sparse_fitness:.4g}.",
    ]
    if final.score_mean is not None and (not final.baselines_apart or final.human_worse):
        lines.append(f"Human-normalized score: {final.normalized_sentence()}.")
    elif final.score_mean is not None:
        lines.append(
            f"Human-normalized score: **{final.score_mean:.3f} ± {final.score_std:.3f}** "
            f"(the mean over seeds against the mean baselines: 1 matches {final.human_name}, 0 the sparse one; "
            "± the spread of the task score over seeds, on that scale)."
        )
    if final.success_rate is not None:
        lines.append(f"Success rate on held-out episodes: {final.success_rate:.0%}.")
    return lines


def recipe_rows(own: Recipe, final: FinalResult, others: list[RecipeResult]) -> list[tuple[str, ...]]:
    """The best reward's scores under the run's own recipe, then under each other one (`autoreward evaluate`):
    the recipe, the designed reward's task score, both baselines', and the human-normalized score, as text."""
    rows = [_recipe_row(f"autoreward's: {own.describe()}", final)]
    return rows + [_recipe_row(result.recipe.describe(), result.final) for result in others]


def _recipe_row(label: str, final: FinalResult) -> tuple[str, ...]:
    if final.fitness_mean is None:
        return (label, "no task score", "-", "-", "-")
    if final.score_mean is None:
        normalized = "-"
    elif final.baselines_apart:
        normalized = f"{final.score_mean:.3f} ± {final.score_std:.3f}"
        if final.human_worse:
            normalized += " (the human baseline scored below the sparse one: above 0 beats both)"
    else:
        normalized = "not meaningful: the baselines are closer than their spreads"
    return (
        label,
        f"{final.fitness_mean:.4g} ± {final.fitness_std:.2g}",
        f"{final.human_fitness:.4g} ± {final.human_spread or 0.0:.2g}",
        f"{final.sparse_fitness:.4g} ± {final.sparse_spread or 0.0:.2g}",
        normalized,
    )


def recipe_table(facts: RunFacts) -> list[tuple[str, ...]]:
    """`recipe_rows` of a run's facts: none until another recipe was evaluated."""
    if facts.final is None or not facts.recipes:
        return []
    return recipe_rows(recipe_of(facts.config), facts.final, list(facts.recipes))


RECIPE_COLUMNS = ("training recipe", "designed", "human", "sparse", "human-normalized")


def _recipe_lines(facts: RunFacts) -> list[str]:
    final = facts.final
    lines = [
        f"The best reward, **{final.candidate_id}**, and both baselines re-trained under each recipe "
        f"(`autoreward evaluate`): task score on held-out episodes, mean ± spread over seeds. Human: "
        f"{final.human_name}; sparse: the task score alone.",
        "",
        "| " + " | ".join(RECIPE_COLUMNS) + " |",
        "|---" * len(RECIPE_COLUMNS) + "|",
    ]
    return lines + ["| " + " | ".join(row) + " |" for row in recipe_table(facts)]


FORM_NAMES = {"reward": "dense reward", "progress": "progress with count bonus", "latent": "latent terms"}


def form_rows(facts: RunFacts) -> list[tuple[str, ...]]:
    """Per reward form the run asked for: its candidates designed and trained, and its best and mean task score on
    held-out episodes (one seed each, the round budget; only the run's best is trained again over seeds)."""
    rows = []
    higher = facts.config.task.fitness.higher_is_better if facts.config.task.fitness else True
    for form in facts.config.loop.forms:
        members = [c for c in facts.candidates if c.form == form]
        scored = [c for c in members if c.fitness is not None]
        best = (max if higher else min)(scored, key=lambda c: c.fitness) if scored else None
        mean = sum(c.fitness for c in scored) / len(scored) if scored else None
        rows.append(
            (
                f"{form} ({FORM_NAMES[form]})",
                str(len(members)),
                str(len(scored)),
                f"{best.fitness:.4g} ({best.id})" if best else "-",
                f"{mean:.4g}" if mean is not None else "-",
            )
        )
    return rows


def _form_lines(facts: RunFacts) -> list[str]:
    lines = [
        "Each form's candidates on the same trusted task score, one training each at the round budget; only the "
        "run's best is trained again over seeds (above).",
        "",
        "| form | designed | trained | best task score | mean task score |",
        "|---|---|---|---|---|",
    ]
    return lines + ["| " + " | ".join(row) + " |" for row in form_rows(facts)]


def form_report_line(training: TrainingResult) -> str | None:
    """What a progress or latent training learned, in one line (None for a dense reward's)."""
    return training.form_report.describe() if training.form_report is not None else None


def _round_lines(result: RoundResult, candidates: list[Candidate], facts: RunFacts) -> list[str]:
    members = [c for c in candidates if c.round == result.round]
    several = len(facts.config.loop.forms) > 1 or facts.config.loop.forms != ("reward",)
    form_header, form_rule = (" form |", "---|") if several else ("", "")
    lines = [f"| candidate |{form_header} attempts | outcome | task score |", f"|---|{form_rule}---|---|---|"]
    for candidate in members:
        score = "-" if candidate.fitness is None else f"{candidate.fitness:.4g}"
        if candidate.confirmed_fitness is not None:
            score += f" (mean over {1 + len(candidate.confirmation)} seeds: {candidate.confirmed_fitness:.4g})"
        mark = " (best of round)" if candidate.id == result.best_id else ""
        form = f" {candidate.form} |" if several else ""
        lines.append(f"| {candidate.id}{mark} |{form} {len(candidate.attempts)} | {outcome(candidate)} | {score} |")
    for candidate in members:
        lines += ["", f"### {candidate.id}", ""]
        for attempt in candidate.attempts:
            label = "first design" if attempt.number == 0 else f"repair {attempt.number}"
            lines.append(f"- **{label}.** {attempt.explanation or '(no explanation)'}")
            if attempt.code is None:
                lines.append(f"  - no program: {attempt.problem}")
            elif attempt.check is not None and not attempt.check.ok:
                lines.append(f"  - check failed ({attempt.check.category.value}): {attempt.check.message}")
            if attempt.critique is not None:
                reasons = "; ".join(attempt.critique.reasons)
                lines.append(f"  - critic: {attempt.critique.verdict}" + (f": {reasons}" if reasons else ""))
        if candidate.screening_agreement is not None:
            lines.append(
                f"- pre-screening on stored episodes: agreed with the task score on "
                f"{candidate.screening_agreement:.0%} of pairs{_p_value(candidate)}"
            )
        if candidate.status in ("training_failed", "prescreened_out") or candidate.stopped_at is not None:
            lines.append(f"- {candidate.message}")
        alarm = hacking(candidate, facts)
        if alarm:
            lines.append(f"- **{alarm}**")
        learned = form_report_line(candidate.training) if candidate.training is not None else None
        if learned:
            lines.append(f"- {learned}")
        summary = candidate.training.evaluation.summary if candidate.training is not None else None
        if summary is not None:  # the table the analyzer read: what the reward reads, and the contacts, included
            lines += ["", "What its policy did on held-out episodes:", "", "```", summary_text(summary), "```"]
    if result.steps_saved:
        lines += ["", f"Pre-screening saved {result.steps_saved} training steps in this round."]
    if result.halving_steps_saved:
        lines += [
            "",
            f"Successive halving saved {result.halving_steps_saved} training steps in this round "
            f"({result.steps_trained} spent).",
        ]
    if result.confirmation_steps:
        lines += ["", confirmation_sentence(result, members)]
    if result.best_so_far_id:
        lines += ["", f"Best so far after this round: **{result.best_so_far_id}**."]
    return lines


def confirmation_sentence(result: RoundResult, members: list[Candidate]) -> str:
    """What --confirm-seeds did in a round: which candidates it trained again, on how many seeds, at what cost."""
    confirmed = [c for c in members if c.confirmation]
    seeds = len(confirmed[0].confirmation) if confirmed else 0
    return (
        f"Near the best on the round's seed, {', '.join(c.id for c in confirmed)} were each trained on {seeds} more "
        f"seed{'s' if seeds != 1 else ''} ({result.confirmation_steps} training steps), and the round's best was "
        "picked by their mean."
    )


def hacking(candidate: Candidate, facts: RunFacts) -> str | None:
    """The reward-hacking alarm of a candidate's training (loop.feedback.hacking_alarm), where a score exists."""
    task = facts.config.task
    if candidate.training is None or task.fitness is None:
        return None
    return hacking_alarm(candidate.id, candidate.training, task.fitness.higher_is_better)


def _p_value(candidate: Candidate) -> str:
    # Runs recorded before the pre-screen's significance test have no p-value.
    if candidate.screening_p_value is None:
        return ""
    return f" (p = {candidate.screening_p_value:.2g} against chance)"


def outcome(candidate: Candidate) -> str:
    """What became of a candidate, in words."""
    if candidate.stopped_at is not None:
        return f"trained, stopped early at {candidate.stopped_at} steps"
    return {
        "trained": "trained",
        "ready": "not trained yet",
        "failed_check": "dropped: check failed",
        "rejected": "dropped: rejected by the critic",
        "prescreened_out": "not trained: failed pre-screening",
        "training_failed": "training failed",
    }[candidate.status]


def _failure_modes(rounds: list[RoundResult]) -> list[str]:
    lines = []
    for result in rounds:
        for lesson in result.lessons:
            lines.append(f"- round {result.round}: {lesson}")
        if result.feedback and result.feedback.analysis and result.best_id == result.feedback.candidate_id:
            lines.append(f"- round {result.round}, analysis of {result.feedback.candidate_id}:")
            lines += [f"  {line}" for line in result.feedback.analysis.splitlines() if line.strip()]
    return lines
