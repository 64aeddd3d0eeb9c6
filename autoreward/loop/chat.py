"""An interactive design session (`autoreward chat`): a reward written, previewed in a minute, corrected in words.

Language to Rewards (Yu et al.) pairs an LLM that writes rewards with a
real-time optimizer, so that a person sees what a reward asks for within
seconds and says what to change ("lift the foot higher"), instead of
waiting for a training per attempt. A session here goes in turns:

1. the designer writes a reward (turn 1: from the task and the State, as a
   design run's first round does), or revises the latest one (later turns:
   the correction, with the conversation so far, `prompts/chat_revision.j2`).
   It is checked, reviewed by the critic and repaired as any candidate is
   (`CandidateDesigner`): turn k is candidate `r<k>c0` of the run;
2. the preview plays it (`loop/preview.py`: one episode planned by
   predictive sampling, replayed and scored on the task score, filmed);
3. the person watches and says what to change, `train` (the latest reward
   that passed its check is trained by PPO as a run's candidates are, into
   its own folder) or `quit`.

Every turn is kept in the run folder as it happens (`chat.json`, the
candidates, their previews and every LLM call), so an interrupted session
resumes where it stopped: a turn already designed or previewed is read back,
and the person is asked again only what they had not answered. With the
replay backend and the person's words from a file (`autoreward chat
--person FILE`) a whole session replays.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from autoreward.config import Task
from autoreward.errors import WorkerError
from autoreward.loop.design import CandidateDesigner, DesignBrief
from autoreward.loop.design_run import DesignSession
from autoreward.loop.preview import RECORD_FILE as PREVIEW_RECORD
from autoreward.loop.preview import PreviewResult, preview
from autoreward.loop.runner import Runner
from autoreward.loop.training import describe_training, train_or_reuse
from autoreward.records import Candidate, ChatRecord, ChatTurn
from autoreward.serialize import read_json, write_json
from autoreward.task.describe import describe_task
from autoreward.task.files import episode_limit

CHAT_FILE = "chat.json"
PREVIEW_FOLDER = "preview"  # inside a turn's candidate folder
TRAIN, QUIT = "train", "quit"
# What the person is asked after each turn: told the turn and its preview (None when there is none).
Person = Callable[[ChatTurn, "PreviewResult | None"], str]


class ChatSession:
    """Drives (or resumes) the interactive session stored in `session.store`; `person` answers after each turn."""

    def __init__(self, session: DesignSession, runner: Runner, person: Person):
        self.store = session.store
        self.runner = runner
        self.person = person
        self.prompts = session.prompts
        config = self.store.config()
        self.task: Task = config.task
        self.loop = config.loop
        self.designer = CandidateDesigner.in_jail(session.llm, session.prompts, self.task, self.loop, runner.jail)

    def run(self) -> ChatRecord:
        """Turns until the person says `train` (then the training) or `quit`; an error marks the run failed."""
        return self.store.driven(self._run)

    def _run(self) -> ChatRecord:
        record = self.load()
        turns = list(record.turns)
        while True:
            if not turns or (turns[-1].reply is not None and _ending(turns[-1].reply) is None):
                asked = turns[-1].reply if turns else None
                turns.append(self._turn(len(turns) + 1, asked, turns))
                self._save(ChatRecord(tuple(turns)))
            last = turns[-1]
            if last.reply is None:
                self.store.set_status(f"waiting for the person after turn {last.number}")
                reply = " ".join(self.person(last, self.preview_of(last)).split())
                if _ending(reply) == TRAIN and self._latest_good(turns) is None:
                    self.runner.progress.note("no reward has passed its check yet: say what to change, or quit")
                    continue
                if not reply:
                    continue
                turns[-1] = last = replace(last, reply=reply)
                self.store.log_event("the person said", turn=last.number, said=reply)
                self._save(ChatRecord(tuple(turns)))
            ending = _ending(last.reply)
            if ending == TRAIN:
                return self._train(turns)
            if ending == QUIT:
                latest = self._latest_good(turns)
                best = self.store.load_candidate(latest.candidate_id, latest.number) if latest else None
                self.store.set_status("finished", best)
                return ChatRecord(tuple(turns))

    # --- one turn ----------------------------------------------------------------

    def _turn(self, number: int, asked: str | None, earlier: list[ChatTurn]) -> ChatTurn:
        candidate_id = f"r{number}c0"
        candidate = self.store.load_candidate(candidate_id, number)
        if candidate is None:
            self.store.set_status(f"turn {number}: designing")
            self.runner.progress.note(f"turn {number}: the designer is writing" + (" a revision" if asked else ""))
            request = self._revision_request(asked, earlier) if asked is not None else None
            folder = self.store.candidate_dir(candidate_id, number)
            candidate = self.designer.design(self._brief(), number, 0, folder, request=request)
            self.store.save_candidate(candidate)
        turn = ChatTurn(number, asked, candidate_id, ready=candidate.status == "ready")
        if not turn.ready:
            self.runner.progress.note(f"turn {number}: {candidate.status}: {candidate.message}")
            return replace(turn, problem=candidate.message)
        folder = self.store.candidate_dir(candidate_id, number) / PREVIEW_FOLDER
        if (folder / PREVIEW_RECORD).exists():
            return replace(turn, previewed=True)  # read back on resume
        self.store.set_status(f"turn {number}: previewing")
        self.runner.progress.note(f"turn {number}: previewing {candidate_id} (one episode planned on the reward)")
        told = lambda data: self.runner.progress.training(f"turn {number}", data)  # noqa: E731
        try:
            preview(
                self.task,
                candidate.code,
                folder,
                self.task.planner,
                runner=self.runner,
                on_progress=told,
                video=self.loop.videos,
                seed=self.loop.seed,
            )
        except WorkerError as error:
            message = str(error).splitlines()[0]
            self.runner.progress.note(f"turn {number}: no preview: {message}")
            return replace(turn, problem=message)
        return replace(turn, previewed=True)

    def _brief(self) -> DesignBrief:
        return DesignBrief(
            task_description=self.task.description,
            state_description=describe_task(self.task),
            training_description=describe_training(self.loop.training_config(), episode_limit(self.task)),
        )

    def _revision_request(self, correction: str, earlier: list[ChatTurn]) -> str:
        latest = self._latest_good(earlier)
        if latest is None:  # nothing has passed its check yet: the designer starts again, told why
            program = "(none of your rewards has passed its check yet)"
        else:
            program = self.store.load_candidate(latest.candidate_id, latest.number).code
        shown = [{"number": t.number, "asked": t.asked, "outcome": self.outcome(t)} for t in earlier]
        return self.prompts.render(
            "chat_revision",
            task_description=self.task.description,
            turns=shown,
            program=program,
            correction=correction,
        )

    def outcome(self, turn: ChatTurn) -> str:
        """What a turn showed, in a sentence: its preview's task score and returns, or why it has none."""
        if turn.problem is not None:
            return f"no preview ({turn.problem})"
        result = self.preview_of(turn)
        if result is None:
            return "no preview"
        episode = result.evaluation.episodes[0]
        parts = [f"the planner's episode lasted {episode.length} steps"]
        if episode.fitness is not None and self.task.fitness is not None:
            parts.append(f"its task score was {episode.fitness:.4g} ({self.task.fitness.description})")
        if episode.reward_return is not None:
            components = ", ".join(f"{name} {value:.4g}" for name, value in episode.component_returns.items())
            parts.append(
                f"your reward returned {episode.reward_return:.4g}" + (f" ({components})" if components else "")
            )
        return "; ".join(parts)

    def preview_of(self, turn: ChatTurn) -> PreviewResult | None:
        """The turn's preview, read from its folder (None when it has none)."""
        if not turn.previewed:
            return None
        path = self.store.candidate_dir(turn.candidate_id, turn.number) / PREVIEW_FOLDER / PREVIEW_RECORD
        return read_json(path, PreviewResult)

    # --- the end -----------------------------------------------------------------

    def _train(self, turns: list[ChatTurn]) -> ChatRecord:
        latest = self._latest_good(turns)
        candidate = self.store.load_candidate(latest.candidate_id, latest.number)
        self.store.set_status("training", candidate)
        self.runner.progress.note(f"training {candidate.id} by {self.loop.budget.algo.upper()}")
        told = lambda data: self.runner.progress.training(candidate.id, data)  # noqa: E731
        config = self.loop.training_config()
        try:
            training = train_or_reuse(
                self.task, config, self.store.training_dir(candidate), candidate.code, told, runner=self.runner
            )
        except WorkerError as error:
            trained = replace(candidate, status="training_failed", message=str(error).splitlines()[0])
        else:
            trained = replace(candidate, status="trained", training=training)
        self.store.save_candidate(trained)
        record = ChatRecord(tuple(turns), trained=trained.id)
        self._save(record)
        self.store.set_status("finished" if trained.status == "trained" else f"failed: {trained.message}", trained)
        return record

    def _latest_good(self, turns: list[ChatTurn]) -> ChatTurn | None:
        """The latest turn whose reward passed its check (and the critic)."""
        return next((t for t in reversed(turns) if t.ready), None)

    # --- the record ----------------------------------------------------------------

    def load(self) -> ChatRecord:
        path = self.store.path / CHAT_FILE
        return read_json(path, ChatRecord) if path.exists() else ChatRecord()

    def _save(self, record: ChatRecord) -> None:
        write_json(self.store.path / CHAT_FILE, record)


def _ending(reply: str) -> str | None:
    """TRAIN or QUIT when the person's reply ends the session that way, else None (a correction)."""
    word = reply.strip().lower().rstrip(".!")
    if word in (TRAIN, QUIT, "exit", "stop"):
        return TRAIN if word == TRAIN else QUIT
    return None


def trained_candidate(store, record: ChatRecord) -> Candidate | None:
    """The candidate the session trained, read back (None before the person said train)."""
    if record.trained is None:
        return None
    return store.load_candidate(record.trained)
