"""How a round's best is chosen: by the task score, or by a preference (a person, the score unseen, an LLM judge).

One protocol, two ways. `ByFitness` ranks trained candidates by their held-out
task score. `ByPreference` asks a `PreferenceSource` to judge the round's
trained policies together with the best of earlier rounds, so its pick is the
best of all rounds; a preference already in the run folder (a resumed run) is
read, not asked again. A task given only as a sentence and without an accepted
score (`loop.task_score`) has none, so it is judged by an LLM that watches
frames of each policy's video (when the run renders videos), through the same
preference path as `--feedback vlm`.

`shows_score` says whether the designer may be told task scores: never when a
preference decides, since the score would then steer what it must not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from autoreward.config import DEFAULT_PAGE_URL, LoopConfig, Task
from autoreward.llm.backends import LLM
from autoreward.llm.prompts import Prompts
from autoreward.loop.preferences import LLMPreferences, PreferenceSource, preference_source
from autoreward.loop.run_store import RunStore
from autoreward.records import Candidate, Preference


@dataclass(frozen=True)
class Selection:
    """What a round's selection found: the best of all rounds so far and this round's best."""

    best: Candidate | None  # the best of all rounds so far
    round_best: Candidate | None  # this round's best trained candidate (None when it has none)
    preference: Preference | None = None  # the judgement behind it, when a preference decided
    judged: tuple[Candidate, ...] = ()  # the candidates that preference compared


class Selector(Protocol):
    """Chooses a round's best among its candidates and the best of earlier rounds."""

    shows_score: bool  # whether the designer may see task scores (reflection, lessons)

    def select(self, round_number: int, best_so_far: Candidate | None, candidates: list[Candidate]) -> Selection: ...


@dataclass
class ByFitness:
    """The highest held-out task score (the lowest, where lower is better); ties go to the earlier candidate."""

    task: Task
    shows_score: bool = True

    def select(self, round_number: int, best_so_far: Candidate | None, candidates: list[Candidate]) -> Selection:
        # Where --confirm-seeds trained the candidates near the top on more seeds, the pick is among them, by mean.
        round_best = self.best_of([c for c in candidates if c.confirmation] or candidates)
        return Selection(self.best_of([c for c in (best_so_far, round_best) if c is not None]), round_best)

    def best_of(self, candidates: list[Candidate]) -> Candidate | None:
        """The best trained candidate (by its confirmed mean where it has one); one stopped early by halving never
        is: its score is of a shorter training."""
        scored = [c for c in candidates if c.status == "trained" and c.fitness is not None and c.stopped_at is None]
        if not scored:
            return None
        sign = 1.0 if self.task.fitness is None or self.task.fitness.higher_is_better else -1.0
        # Ties go to the earlier candidate, so a resumed run picks the same one.
        return max(scored, key=lambda c: (sign * c.selection_fitness, -c.round, -c.index))


@dataclass
class ByPreference:
    """The best by a preference between the round's trained policies and the best so far, judged together."""

    source: PreferenceSource
    store: RunStore
    note: Callable[[str], None]
    shows_score: bool = False

    def select(self, round_number: int, best_so_far: Candidate | None, candidates: list[Candidate]) -> Selection:
        # A candidate halving stopped never enters: its policy had a shorter training than the others.
        pool = ([best_so_far] if best_so_far is not None else []) + [
            c for c in candidates if c.status == "trained" and c.stopped_at is None
        ]
        if len(pool) <= 1:  # nothing to compare
            best = pool[0] if pool else None
            return Selection(best, _of_round(best, round_number), None, tuple(pool))
        preference = self._recorded(round_number, [c.id for c in pool])
        if preference is None:
            preference = self.source.choose(round_number, pool)
            self.store.save_preference(preference)
        else:
            self.note(f"round {round_number}: preference already given, read from the run folder")
        best = next(c for c in pool if c.id == preference.best_id)
        self.note(
            f"round {round_number}: {preference.source} preference: best {best.id}"
            + (f", worst {preference.worst_id}" if preference.worst_id else "")
        )
        return Selection(best, _of_round(best, round_number), preference, tuple(pool))

    def _recorded(self, round_number: int, shown: list[str]) -> Preference | None:
        try:
            preference = self.store.load_preference(round_number)
        except ValueError:
            return None  # a broken file: ask again (a human source moves it aside and says why)
        return preference if preference is not None and preference.problem(shown) is None else None


def _of_round(candidate: Candidate | None, round_number: int) -> Candidate | None:
    return candidate if candidate is not None and candidate.round == round_number else None


def selector_for(
    config: LoopConfig,
    task: Task,
    llm: LLM,
    prompts: Prompts,
    store: RunStore,
    note: Callable[[str], None],
    page_url: str = DEFAULT_PAGE_URL,
    preference_timeout: float | None = None,
    judge_llm: LLM | None = None,
) -> Selector:
    """The selector a run's settings name: its `feedback`, and a watching judge for a task without a score.

    `judge_llm` is the LLM a watching judge asks (the vision model); None, `llm`.
    """
    source = preference_source(config, task, llm, prompts, store, page_url, note, preference_timeout, judge_llm)
    if source is None and task.fitness is None:
        # It watches where there are videos (through the vision model), else it reads, as the designer's model.
        source = (
            LLMPreferences(judge_llm or llm, prompts, task, config, store)
            if config.videos
            else LLMPreferences(llm, prompts, task, config)
        )
    return ByFitness(task) if source is None else ByPreference(source, store, note)
