"""Preferences: which of a round's policies is best and which worst, from a person, a hidden score or an LLM.

One protocol, `PreferenceSource.choose(round_number, candidates) -> Preference`,
three sources:

- `HumanPreferences`: a person, on the review page (`autoreward serve`). The
  loop and the page are different processes and the run folder is their
  contract: the loop writes `round_<n>/preference_request.json` (which
  candidates to judge, where the page is), says so in the run's status and
  events, and waits for `round_<n>/preference.json`, which the page writes
  atomically. A file that names candidates the round did not show is moved
  aside as `preference.refused.json` and the wait goes on.
- `SyntheticPreferences`: ranks by the task's fitness, so preference-driven
  runs can be benchmarked without a person. The score picks; it is never
  shown to the designer.
- `LLMPreferences`: an LLM judge reads the policies' trajectory summaries
  (`loop.judge`) and names the best and the worst; with `watch`, a vision
  model also sees frames of each policy's video (`loop.frames`), kept beside
  the video in the candidate's `training/frames/`.

The candidates judged are the round's trained ones with the best so far
among them, so a preference's best is the best of all rounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol

from autoreward.config import DEFAULT_PAGE_URL, LoopConfig, Task
from autoreward.errors import AutorewardError
from autoreward.llm.backends import LLM, Image
from autoreward.llm.prompts import Prompts
from autoreward.loop.frames import video_frames
from autoreward.loop.judge import judge
from autoreward.loop.run_store import RunStore
from autoreward.records import Candidate, Preference, PreferenceRequest, now_iso


class PreferenceSource(Protocol):
    """Judges a round's trained candidates (the best so far among them)."""

    def choose(self, round_number: int, candidates: list[Candidate]) -> Preference: ...


@dataclass
class SyntheticPreferences:
    """The best and the worst by the task's fitness; pairwise choices between neighbours in that ranking."""

    task: Task

    def choose(self, round_number: int, candidates: list[Candidate]) -> Preference:
        if self.task.fitness is None:
            raise AutorewardError(f"synthetic preferences rank by the task's fitness, and task {self.task.id} has none")
        sign = 1.0 if self.task.fitness.higher_is_better else -1.0
        scored = [c for c in candidates if c.fitness is not None]
        if not scored:
            raise AutorewardError(f"round {round_number}: no candidate has a task score to rank by")
        # Ties go to the earlier candidate (the best so far comes first), as with fitness feedback.
        ranked = sorted(scored, key=lambda c: (-sign * c.fitness, c.round, c.index))
        return Preference(
            round=round_number,
            best_id=ranked[0].id,
            worst_id=ranked[-1].id if len(ranked) > 1 else None,
            pairs=tuple((a.id, b.id) for a, b in zip(ranked, ranked[1:])),
            source="synthetic",
            candidate_ids=tuple(c.id for c in candidates),
            at=now_iso(),
        )


@dataclass
class LLMPreferences:
    """An LLM judge names the best and the worst from what each policy did; its reasons become the comment."""

    llm: LLM
    prompts: Prompts
    task: Task
    config: LoopConfig
    store: RunStore | None = None  # with it, the judge watches: frames of each video in the run folder

    def choose(self, round_number: int, candidates: list[Candidate]) -> Preference:
        frames = self._frames if self.store is not None else None
        best, worst, reasons = judge(
            self.llm, self.prompts, self.task, self.config, candidates, f"r{round_number}/judge", frames
        )
        return Preference(
            round=round_number,
            best_id=best.id,
            worst_id=worst.id if worst else None,
            comment=reasons,
            source="vlm" if frames is not None else "llm",
            candidate_ids=tuple(c.id for c in candidates),
            at=now_iso(),
        )

    def _frames(self, candidate: Candidate) -> list[Image]:
        return video_frames(self.store.frames_dir(candidate), candidate.id)


@dataclass
class HumanPreferences:
    """A person's choice on the review page, read from the run folder; waits until it is there."""

    store: RunStore
    page_url: str = DEFAULT_PAGE_URL
    poll_seconds: float = 1.0
    timeout_seconds: float | None = None  # None: wait as long as it takes
    announce: Callable[[str], None] = print

    def round_url(self, round_number: int) -> str:
        return f"{self.page_url.rstrip('/')}/runs/{self.store.path.name}/#round-{round_number}"

    def choose(self, round_number: int, candidates: list[Candidate]) -> Preference:
        shown = [c.id for c in candidates]
        url = self.round_url(round_number)
        self.store.save_preference_request(PreferenceRequest(round_number, tuple(shown), url, now_iso()))
        self.store.set_status(f"waiting for a preference on round {round_number} at {url}")
        self.store.log_event("preference wanted", round=round_number, url=url)
        self.announce(
            f"round {round_number}: waiting for your preference among {', '.join(shown)} at {url} "
            f"(serve the page with: autoreward serve --runs-dir {self.store.path.parent})"
        )
        started = time.monotonic()
        while True:
            preference = self._read(round_number, shown)
            if preference is not None:
                break
            if self.timeout_seconds is not None and time.monotonic() - started > self.timeout_seconds:
                self.store.set_status(
                    f"stopped: no preference for round {round_number} within {self.timeout_seconds:g} s"
                )
                raise AutorewardError(
                    f"no preference for round {round_number} came within {self.timeout_seconds:g} s; "
                    f"give it at {url} and resume the run"
                )
            time.sleep(self.poll_seconds)
        self.store.set_status("running")
        self.store.log_event("preference received", round=round_number, best=preference.best_id)
        return preference

    def _read(self, round_number: int, shown: list[str]) -> Preference | None:
        path = self.store.preference_path(round_number)
        try:
            preference = self.store.load_preference(round_number)
            problem = None if preference is None else preference.problem(shown)
        except ValueError as error:
            preference, problem = None, str(error)
        if problem is None:
            return preference
        path.replace(path.with_name("preference.refused.json"))
        self.store.log_event("preference refused", round=round_number, reason=problem)
        self.announce(f"round {round_number}: the preference in {path} was refused: {problem}; still waiting")
        return None


def preference_source(
    config: LoopConfig,
    task: Task,
    llm: LLM,
    prompts: Prompts,
    store: RunStore,
    page_url: str = DEFAULT_PAGE_URL,
    announce: Callable[[str], None] = print,
    timeout_seconds: float | None = None,
    judge_llm: LLM | None = None,
) -> PreferenceSource | None:
    """The source a run's `feedback` setting names; None for fitness feedback.

    `timeout_seconds`: how long a person (feedback "human") is waited for; None, as long as it takes.
    `judge_llm`: the LLM a watching judge (feedback "vlm") asks; None, `llm`.
    """
    if config.feedback == "synthetic":
        return SyntheticPreferences(task)
    if config.feedback == "llm":
        return LLMPreferences(llm, prompts, task, config)
    if config.feedback == "vlm":
        return LLMPreferences(judge_llm or llm, prompts, task, config, store)
    if config.feedback == "human":
        return HumanPreferences(store, page_url, timeout_seconds=timeout_seconds, announce=announce)
    return None
