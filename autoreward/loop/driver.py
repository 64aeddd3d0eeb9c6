"""The design loop: rounds of design, check, review, training and analysis, then a final evaluation.

Each round asks the designer for K candidates in parallel (`design.py`),
trains those that pass in parallel workers (whole, or by successive
halving, `halving.py`), keeps the best of all rounds so far, and turns its
training into feedback for the next round (`feedback.py`). At the end the best reward is re-trained over several seeds
and scored against the human and sparse baselines.

Every step reads its record from the run folder if it is already there and
writes it as soon as it is made, so `DesignLoop.run` on an interrupted run
finishes it without repeating finished work; LLM replies come from the
run's cache.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from autoreward.config import DEFAULT_PAGE_URL, RunConfig, Task, TrainingConfig
from autoreward.errors import AutorewardError, VideoError, WorkerError
from autoreward.llm.backends import LLM, Image
from autoreward.llm.prompts import Prompts
from autoreward.loop.confirmation import SeedConfirmation
from autoreward.loop.design import CandidateDesigner, DesignBrief
from autoreward.loop.feedback import build_feedback, lessons, preference_text
from autoreward.loop.final import FinalEvaluation
from autoreward.loop.frames import video_frames
from autoreward.loop.halving import schedule, successive_halving, train_slice
from autoreward.loop.parallel import parallel_map
from autoreward.loop.preferences import PreferenceSource
from autoreward.loop.prescreen import (
    MARGIN_FRACTION,
    VERDICTS,
    LabelledEpisode,
    labelled_episodes,
    over_the_half,
    screen,
)
from autoreward.loop.preview import prescreen_problem, preview
from autoreward.loop.progress import LoopProgress
from autoreward.loop.run_store import RunStore
from autoreward.loop.runner import Runner
from autoreward.loop.selection import ByFitness, ByPreference, Selector, selector_for
from autoreward.loop.training import describe_training, train
from autoreward.records import Candidate, FinalResult, RoundResult
from autoreward.task.describe import describe_task
from autoreward.task.files import episode_limit


@dataclass
class DesignLoop:
    """Runs (or resumes) the design run stored in `store`."""

    store: RunStore
    llm: LLM
    prompts: Prompts
    runs_dir: Path  # where baselines are cached, shared by runs
    runner: Runner  # the run's jail, executor and progress, made once by the caller
    page_url: str = DEFAULT_PAGE_URL  # where a person gives preferences (feedback "human")
    preference_timeout: float | None = None  # seconds to wait for that person before stopping; None: no limit
    preferences: PreferenceSource | None = None  # None: as the run's `feedback` names (loop.selection)
    judge_llm: LLM | None = None  # what a watching judge or analyzer asks (vlm_model's LLM); None: `llm`

    def __post_init__(self):
        self.config: RunConfig = self.store.config()
        self.task: Task = self.config.task
        self.loop = self.config.loop
        self.progress: LoopProgress = self.runner.progress
        if self.loop.problem() is not None:
            raise AutorewardError(self.loop.problem())
        if self.loop.mpc_prescreen and prescreen_problem(self.task) is not None:
            raise AutorewardError(prescreen_problem(self.task))
        if self.preferences is not None:  # a source chosen by the caller
            self.selector: Selector = ByPreference(self.preferences, self.store, self.progress.note)
        else:
            self.selector = selector_for(
                self.loop,
                self.task,
                self.llm,
                self.prompts,
                self.store,
                self.progress.note,
                self.page_url,
                self.preference_timeout,
                self.judge_llm,
            )
        self.designer = CandidateDesigner.in_jail(self.llm, self.prompts, self.task, self.loop, self.runner.jail)

    def run(self) -> FinalResult:
        """Run (or resume) the rounds and the final evaluation; an error that ends the run marks it failed."""
        return self.store.driven(self._run)

    def _run(self) -> FinalResult:
        state_description = describe_task(self.task)
        best: Candidate | None = None
        previous: RoundResult | None = None
        for number in range(1, self.loop.rounds + 1):
            result = self.store.load_round(number)
            if result is None:
                result = self._round(number, previous, best, state_description)
                self.store.save_round(result)
            else:
                self.progress.note(f"round {number}: already done, read from the run folder")
            best = self._load(result.best_so_far_id) if result.best_so_far_id else None
            previous = result
        if best is None:
            raise WorkerError("no candidate of any round could be trained; see the run folder for each one's reason")
        self.store.set_status("final evaluation", best)
        final = self.store.load_final() or self._final_evaluation().run(best)
        self.store.save_final(final)
        self.store.set_status("finished", best)
        return final

    # --- one round -----------------------------------------------------------

    def _round(
        self, number: int, previous: RoundResult | None, best: Candidate | None, state_description: str
    ) -> RoundResult:
        brief = self.brief(previous, best, state_description)
        self.progress.note(f"round {number}: designing {self.loop.candidates} candidates")
        indexes = range(self.loop.candidates)
        designed = parallel_map(lambda i: self._designed(brief, number, i), indexes, self.loop.candidates)
        stored = self._labelled_episodes(number)
        if stored:
            designed = parallel_map(lambda c: self._prescreened(c, stored), designed, self.loop.workers)
            designed = self._at_most_half_prescreened_out(designed)
        if self.loop.mpc_prescreen:
            designed = self._previewed_round(number, designed)
        if self._halving():
            candidates = self._halved(number, designed)
        else:
            candidates = parallel_map(self._trained, self._best_preview_first(designed), self.loop.workers)
            place = {c.id: i for i, c in enumerate(designed)}
            candidates.sort(key=lambda c: place[c.id])
        if self.loop.confirm_seeds and isinstance(self.selector, ByFitness):
            candidates = self._confirmation().confirm(number, candidates)
        skipped = sum(c.status == "prescreened_out" for c in candidates)
        budget = self.loop.budget.steps

        selection = self.selector.select(number, best, candidates)
        new_best, round_best, preference = selection.best, selection.round_best, selection.preference
        if new_best is None:
            feedback = None
        elif previous is not None and previous.feedback and previous.best_so_far_id == new_best.id:
            feedback = previous.feedback  # the best did not change: its feedback stands
        else:
            if self.loop.analyzer and new_best.round < self.loop.rounds:  # as build_feedback asks the analyzer
                self.progress.note(f"round {number}: analysing {new_best.id}")
            # Judged by preference, the designer sees no task score at all, only what was preferred.
            frames = self._analyzer_frames(new_best)
            feedback = build_feedback(
                (self.judge_llm or self.llm) if frames else self.llm,  # frames go to the vision model, as the judge's
                self.prompts,
                self.task,
                self.loop,
                new_best,
                show_score=self.selector.shows_score,
                frames=frames,
            )
        if feedback is not None and preference is not None:
            feedback = replace(feedback, preference=preference_text(self.prompts, preference, list(selection.judged)))
        if new_best is not None:
            confirmed = f" (mean over {1 + len(new_best.confirmation)} seeds)" if new_best.confirmation else ""
            self.progress.note(
                f"round {number}: best so far {new_best.id}, task score {_shown(new_best.selection_fitness)}{confirmed}"
            )
        higher = self.task.fitness.higher_is_better if self.task.fitness else True
        return RoundResult(
            round=number,
            candidate_ids=tuple(c.id for c in candidates),
            best_id=round_best.id if round_best else None,
            best_so_far_id=new_best.id if new_best else None,
            feedback=feedback,
            lessons=lessons(candidates, new_best, higher, show_scores=self.selector.shows_score),
            steps_saved=skipped * budget,
            steps_trained=sum(c.training.steps for c in candidates if c.training is not None),
            halving_steps_saved=sum(budget - c.stopped_at for c in candidates if c.stopped_at is not None),
            confirmation_steps=sum(len(c.confirmation) for c in candidates) * budget,
        )

    def brief(self, previous: RoundResult | None, best: Candidate | None, state_description: str) -> DesignBrief:
        """What the designer is told in a round: the task, the State, how it trains, what earlier rounds learned."""
        return DesignBrief(
            task_description=self.task.description,
            state_description=state_description,
            best_program=best.code if best else None,
            best_round=best.round if best else None,
            best_form=best.form if best else "reward",
            feedback=previous.feedback.text() if previous and previous.feedback else None,
            lessons=previous.lessons if previous else (),
            training_description=describe_training(self._training_config(), episode_limit(self.task)),
        )

    def _designed(self, brief: DesignBrief, number: int, index: int) -> Candidate:
        candidate_id = f"r{number}c{index}"
        existing = self.store.load_candidate(candidate_id, number)
        if existing is not None:
            return existing
        folder = self.store.candidate_dir(candidate_id, number)
        self.store.log_event("design started", candidate=candidate_id)
        # With several forms (--forms), the candidates of a round take them in turn.
        form = self.loop.forms[index % len(self.loop.forms)]
        candidate = self.designer.design(brief, number, index, folder, form=form)
        self.store.save_candidate(candidate)
        self.store.log_event("design finished", candidate=candidate_id, status=candidate.status)
        verdict = "ready to train" if candidate.status == "ready" else f"{candidate.status}: {candidate.message}"
        self.progress.note(f"{candidate_id}: {len(candidate.attempts)} attempt(s), {verdict[:160]}")
        return candidate

    def _analyzer_frames(self, candidate: Candidate) -> list[Image]:
        """The frames of the candidate's video the analyzer sees ([] without --analyzer-frames, or without them)."""
        if not (self.loop.analyzer_frames and self.loop.analyzer and candidate.round < self.loop.rounds):
            return []
        try:
            return video_frames(self.store.frames_dir(candidate), candidate.id)
        except VideoError as error:
            self.progress.note(f"{candidate.id}: the analyzer reads the numbers alone: {error}")
            return []

    def _labelled_episodes(self, number: int) -> list[LabelledEpisode]:
        # Pre-screening ranks by the task score, which only fitness feedback may use.
        if not self.loop.prescreen or number == 1 or self.task.fitness is None or self.loop.feedback != "fitness":
            return []
        earlier = [c for c in self.store.candidates() if c.round < number]
        return labelled_episodes(earlier, self.store.held_out_transitions)

    def _prescreened(self, candidate: Candidate, stored: list[LabelledEpisode]) -> Candidate:
        if candidate.status != "ready" or candidate.screening_agreement is not None:
            return candidate
        folder = self.store.prescreen_dir(candidate)
        screening = screen(
            self.task,
            candidate.code,
            stored,
            folder,
            self.runner,
            references=self._reference_scores(),
            chance=self.loop.prescreen_threshold,
        )
        self.store.log_event(
            "pre-screened",
            candidate=candidate.id,
            verdict=screening.verdict,
            pairs=screening.pairs,
            effective_pairs=screening.effective_pairs,
            agreement=screening.agreement,
            p_value=screening.p_value,
            margin=screening.margin,
            margin_from=screening.margin_from,
        )
        if screening.agreement is None:  # no pair of clearly different episodes, or the scoring failed
            self.progress.note(f"{candidate.id}: {'; '.join((VERDICTS[screening.verdict], *screening.wrong))}")
            return candidate
        screened = replace(candidate, screening_agreement=screening.agreement, screening_p_value=screening.p_value)
        if screening.rejects():
            screened = replace(
                screened,
                status="prescreened_out",
                message=f"not trained: on {screening.pairs} pairs of stored episodes it agreed with the task score "
                f"only {screening.agreement:.0%} of the time (p = {screening.p_value:.2g} against chance); "
                + "; ".join(screening.wrong),
            )
        self.store.save_candidate(screened)
        self.progress.note(
            f"{candidate.id}: pre-screen {screening.summary()} (a pair needs a gap of {screening.margin:.3g}, "
            f"{MARGIN_FRACTION:.0%} of {screening.margin_from})"
        )
        return screened

    def _reference_scores(self) -> list[float]:
        # Only a task given in words keeps the task scores of an episode of random actions and one standing still.
        proposal = self.store.load_score_proposal()
        if proposal is None or not proposal.adopted:
            return []
        return [score for score in (proposal.random_score, proposal.still_score) if score is not None]

    def _at_most_half_prescreened_out(self, candidates: list[Candidate]) -> list[Candidate]:
        # The pre-screen alone drops at most half of a round: the others it would drop train, best agreement first.
        kept = {c.id: replace(c, status="ready", message="") for c in over_the_half(candidates)}
        for candidate in kept.values():
            self.store.save_candidate(candidate)
            self.store.log_event("pre-screened", candidate=candidate.id, verdict="half_rule")
            self.progress.note(f"{candidate.id}: trained after all; {VERDICTS['half_rule']}")
        return [kept.get(c.id, c) for c in candidates]

    def _previewed_round(self, number: int, designed: list[Candidate]) -> list[Candidate]:
        """--mpc-prescreen: each ready candidate previewed (read back when it was), and the ready ones beyond the
        best `mpc_keep` share of the round's previews not trained. The share is of every candidate with a preview,
        so a resumed round decides as the interrupted one did; one whose preview failed is trained unranked."""
        previewed = parallel_map(self._previewed, designed, self.loop.workers)
        scored = [c for c in previewed if c.preview_score is not None]
        keep = max(1, math.ceil(self.loop.mpc_keep * len(scored))) if scored else 0
        kept = {c.id for c in self._best_preview_first(scored)[:keep]}
        decided = []
        for candidate in previewed:
            if candidate.status == "ready" and candidate.preview_score is not None and candidate.id not in kept:
                candidate = replace(
                    candidate,
                    status="prescreened_out",
                    message=f"not trained: its preview's task score {candidate.preview_score:.3g} was not among "
                    f"the best {keep} of the round's {len(scored)} previews (--mpc-keep {self.loop.mpc_keep:g})",
                )
                self.store.save_candidate(candidate)
                self.progress.note(f"{candidate.id}: {candidate.message}")
            decided.append(candidate)
        if scored:
            order = ", ".join(f"{c.id} {c.preview_score:.3g}" for c in self._best_preview_first(scored))
            self.progress.note(f"round {number}: previews, best first: {order}")
        return decided

    def _previewed(self, candidate: Candidate) -> Candidate:
        if candidate.status != "ready" or candidate.preview_score is not None:
            return candidate
        folder = self.store.candidate_dir(candidate.id, candidate.round) / "preview"
        self.store.log_event("preview started", candidate=candidate.id)
        told = lambda data: self.progress.training(f"{candidate.id} preview", data)  # noqa: E731
        try:
            result = preview(
                self.task,
                candidate.code,
                folder,
                self.task.planner,
                runner=self.runner,
                on_progress=told,
                video=False,
                seed=self.loop.seed,
            )
        except WorkerError as error:  # not ranked, and trained: the training says what is wrong, if anything
            self.progress.note(f"{candidate.id}: no preview: {str(error).splitlines()[0]}")
            return candidate
        previewed = replace(candidate, preview_score=result.score)
        self.store.save_candidate(previewed)
        self.store.log_event("previewed", candidate=candidate.id, score=result.score, steps=result.steps)
        return previewed

    def _best_preview_first(self, candidates: list[Candidate]) -> list[Candidate]:
        """`candidates` by their preview's task score, best first; those without one after, in their order."""
        higher = self.task.fitness.higher_is_better if self.task.fitness else True
        scored = [c for c in candidates if c.preview_score is not None]
        scored.sort(key=lambda c: -c.preview_score if higher else c.preview_score)
        return scored + [c for c in candidates if c.preview_score is None]

    def _trained(self, candidate: Candidate) -> Candidate:
        if candidate.status != "ready":
            return candidate
        folder = self.store.training_dir(candidate)
        shutil.rmtree(folder, ignore_errors=True)  # what an interrupted training left behind
        config = self._training_config()
        on_progress = lambda data: self.progress.training(candidate.id, data)  # noqa: E731
        self.store.log_event("training started", candidate=candidate.id)
        try:
            training = train(self.task, config, folder, candidate.code, on_progress, runner=self.runner)
        except WorkerError as error:
            trained = replace(candidate, status="training_failed", message=str(error).splitlines()[0])
        else:
            trained = replace(candidate, status="trained", training=training)
        self.store.save_candidate(trained)
        self.store.log_event("training finished", candidate=candidate.id, status=trained.status)
        self.progress.note(f"{candidate.id}: {trained.status}, task score {_shown(trained.fitness)}")
        if trained.training is not None and trained.training.video_error:
            self.progress.note(f"{candidate.id}: no video: {trained.training.video_error}")
        return trained

    def _training_config(self, seed: int | None = None, steps: int | None = None) -> TrainingConfig:
        """How a training of this run trains (`LoopConfig.training_config`): on the run's seed by default."""
        return self.loop.training_config(seed, steps)

    def _confirmation(self) -> SeedConfirmation:
        return SeedConfirmation(self.task, self.loop, self.store, self._training_config, self.runner)

    def _final_evaluation(self) -> FinalEvaluation:
        return FinalEvaluation(
            self.task,
            self.loop,
            self.store,
            self.runs_dir,
            self._training_config,
            self.runner,
        )

    def _halving(self) -> bool:
        return self.loop.halving and self.task.fitness is not None  # a judged task has no score to rank rungs by

    def _halved(self, number: int, designed: list[Candidate]) -> list[Candidate]:
        """The round's trainings by successive halving; each slice is read from its folder if it already ran."""
        # "trained" and "training_failed" ones are those an interrupted halving reached: ranked again from folders.
        entrants = [c for c in designed if c.status in ("ready", "trained", "training_failed")]
        rungs = schedule(len(entrants), self.loop.budget.steps, self.loop.halving_eta)
        if len(rungs) > 1:
            plan = ", ".join(f"{r.candidates} to {r.steps}" for r in rungs)
            self.progress.note(f"round {number}: successive halving of {len(entrants)} candidates: {plan} steps")
        higher = self.task.fitness.higher_is_better
        ended = successive_halving(entrants, rungs, self._slice, higher, self.loop.workers, self._stopped)
        by_id = {c.id: c for c in ended}
        return [by_id.get(c.id, c) for c in designed]

    def _slice(self, candidate: Candidate, start: int | None, until: int) -> Candidate:
        folder = self.store.candidate_dir(candidate.id, candidate.round)
        config = self._training_config()
        on_progress = lambda data: self.progress.training(candidate.id, data)  # noqa: E731
        started = []  # stays empty when the slice is read from its folder

        def on_start():
            started.append(until)
            self.store.log_event("training started", candidate=candidate.id, until=until)

        try:
            training = train_slice(
                self.task,
                config,
                folder,
                candidate.code,
                start,
                until,
                on_progress,
                runner=self.runner,
                on_start=on_start,
            )
        except WorkerError as error:
            trained = replace(candidate, status="training_failed", message=str(error).splitlines()[0], training=None)
        else:
            trained = replace(candidate, status="trained", training=training, stopped_at=None, message="")
        # Saved also when read from its folder: an interruption may have left candidate.json a slice behind.
        self.store.save_candidate(trained)
        if started:
            self.store.log_event("training finished", candidate=candidate.id, status=trained.status, until=until)
            self.progress.note(
                f"{candidate.id}: {trained.status} to {until} steps, task score {_shown(trained.fitness)}"
            )
        return trained

    def _stopped(self, candidate: Candidate) -> None:
        self.store.save_candidate(candidate)
        self.progress.note(f"{candidate.id}: {candidate.message}")

    def _load(self, candidate_id: str) -> Candidate:
        candidate = self.store.load_candidate(candidate_id)
        if candidate is None:
            raise WorkerError(f"the run folder lost candidate {candidate_id}: {self.store.path} is inconsistent")
        return candidate


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
