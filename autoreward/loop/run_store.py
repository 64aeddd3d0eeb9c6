"""A design run's folder: every record as a file a person can open, and an SQLite index of them.

```
runs/<run-id>/
  config.json                 RunConfig: the task, the loop settings, which LLM
  score_proposal.json         ScoreProposal: a task given in words, the score an LLM proposed and who decided
  task.toml                   that task with its accepted score, as a task file to keep
  calls/<tag>.md              every prompt and its reply, e.g. calls/r1__c0__designer.md
  llm_cache/                  replies by request hash (what makes a resume free)
  round_<n>/<candidate>/      candidate.json, reward.py, check_<k>/ (each attempt's check worker),
                              prescreen/, training/ (the worker's folder, with video.mp4 and the
                              frames/ a watching judge saw;
                              training_<steps>/: halving's slices)
  round_<n>/round.json        RoundResult: best so far and the feedback for the next round
  round_<n>/preference.json   Preference: the best and worst of the round (feedback other than fitness)
  round_<n>/preference_request.json   PreferenceRequest: the loop is waiting for a person's preference
  final/seed_<k>/             the best reward re-trained; final.json holds FinalResult
  recipes/<recipe>/           seed_<k>/ and result.json (RecipeResult): the best under another recipe
  export/                     reward.py (the exported module) and reward_report.md
  report.html                 the whole run as one page (autoreward.review.html_report)
  events.jsonl                what was started and finished, and when
  orchestrator.json           the process driving the run (host, pid, start time): is it still there?
  index.sqlite                one row per run, candidate and LLM call
```

`RunStore` is the one place that knows this layout: the loop, the reports,
the review page and the preferences ask it where a candidate's training,
video or preference is.

Records are written as they are made, atomically; a resumed run reads them
instead of redoing the work. The index is derived from the records and may be
rebuilt; the JSON files are the truth.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import threading
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Callable, TypeVar

from autoreward.config import LLMSettings, LoopConfig, Recipe, RunConfig, Task
from autoreward.errors import AutorewardError
from autoreward.llm.backends import LLMReply, LLMRequest, message_text
from autoreward.loop.evaluation import EVALUATION_FOLDER, TRANSITIONS_FILE
from autoreward.loop.run_folders import new_run_dir
from autoreward.records import (
    Candidate,
    FinalResult,
    LLMTotals,
    Preference,
    PreferenceRequest,
    RecipeResult,
    RoundResult,
    RunSummary,
    ScoreProposal,
    now_iso,
)
from autoreward.resources import autoreward_version
from autoreward.sandbox import worker_files
from autoreward.serialize import from_dict, read_json, write_json
from autoreward.sim.video import FRAMES_FOLDER, VIDEO_FILE

# The reply's model when no service answered: a replayed transcript, a person (llm/backends.py).
UNPAID_MODELS = ("replay", "manual")
T = TypeVar("T")
# A candidate's preview film, where a chat turn previewed it (loop/chat.py: <candidate>/preview/, the replay's folder).
PREVIEW_VIDEO = Path("preview") / "evaluation" / VIDEO_FILE
TRANSCRIPT_FILE = "transcript.md"  # every LLM reply of the run in order, in the replay backend's Markdown format
CANDIDATE_ID = re.compile(r"^r(\d{1,4})c(\d{1,4})$")  # "r2c1": round 2, candidate 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    id TEXT PRIMARY KEY, task TEXT, env TEXT, created TEXT, status TEXT,
    best_candidate TEXT, best_fitness REAL, score_mean REAL, score_std REAL
);
CREATE TABLE IF NOT EXISTS candidate (
    id TEXT PRIMARY KEY, round INTEGER, idx INTEGER, status TEXT, attempts INTEGER,
    check_category TEXT, verdict TEXT, fitness REAL, message TEXT
);
CREATE TABLE IF NOT EXISTS llm_call (
    tag TEXT, model TEXT, prompt_tokens INTEGER, completion_tokens INTEGER,
    cost_usd REAL, seconds REAL, cached INTEGER, at TEXT
);
"""


def candidate_round(candidate_id: str) -> int:
    """The round in a candidate id: "r2c1" is candidate 1 of round 2."""
    match = CANDIDATE_ID.match(candidate_id)
    if match is None:
        raise ValueError(f"{candidate_id!r} is not a candidate id (r<round>c<index>)")
    return int(match.group(1))


def slice_folder(candidate_dir: Path, steps: int, budget: int) -> Path:
    """Where the slice of a candidate that reaches `steps` (of `budget`) keeps its training."""
    return Path(candidate_dir) / ("training" if steps >= budget else f"training_{steps}")


class RunStore:
    """Reads and writes the records of one run folder. Safe to use from several threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._budget: int | None = None  # the run's training budget, read from config.json when first needed

    @classmethod
    def create(cls, path: Path, config: RunConfig) -> "RunStore":
        store = cls(path)
        if (store.path / "config.json").exists():
            raise AutorewardError(f"{path} already holds a run; resume it with --resume {path}")
        # The configuration is written in a staging folder that then takes the run's name (over the empty
        # folder new_run_dir made), so a run killed while being created leaves no half-made run to resume.
        staging = store.path.with_name(f".{store.path.name}.creating")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        write_json(staging / "config.json", config)
        os.replace(staging, store.path)
        store._execute(
            "INSERT OR REPLACE INTO run (id, task, env, created, status) VALUES (?, ?, ?, ?, ?)",
            (config.run_id, config.task.id, config.task.env_id, config.created, "running"),
        )
        return store

    @classmethod
    def open(cls, path: Path) -> "RunStore":
        path = Path(path)
        if not (path / "config.json").exists():
            raise AutorewardError(f"{path} is not a run folder: it has no config.json")
        return cls(path)

    def config(self) -> RunConfig:
        return from_dict(RunConfig, _without_loop_models(read_json(self.path / "config.json")))

    # --- where things are: the one owner of the run folder's layout ---------

    def round_dir(self, round_number: int) -> Path:
        return self.path / f"round_{round_number}"

    def candidate_dir(self, candidate_id: str, round_number: int | None = None) -> Path:
        """A candidate's folder (its round is read from its id when not given)."""
        return self.round_dir(candidate_round(candidate_id) if round_number is None else round_number) / candidate_id

    def slice_dir(self, candidate: Candidate, steps: int) -> Path:
        """Where the training of `candidate` that reaches `steps` is (successive halving's slices)."""
        return slice_folder(self.candidate_dir(candidate.id, candidate.round), steps, self._budget_steps())

    def training_dir(self, candidate: Candidate) -> Path:
        """Where a candidate's (last) training is: `training/`, or the slice halving stopped it after."""
        if candidate.stopped_at is None:
            return self.candidate_dir(candidate.id, candidate.round) / "training"
        return self.slice_dir(candidate, candidate.stopped_at)

    def video_path(self, candidate: Candidate) -> Path | None:
        """The video of a candidate's (last) training, else of its preview (a chat turn's, `loop/chat.py`), when
        it has one: a regular file, no link on the way."""
        name = candidate.training.video if candidate.training is not None and candidate.training.video else VIDEO_FILE
        trained = self.training_dir(candidate) / name
        previewed = self.candidate_dir(candidate.id, candidate.round) / PREVIEW_VIDEO
        for path in (trained, previewed):
            if worker_files.is_present(self.path, path.relative_to(self.path)):
                return path
        return None

    def frames_dir(self, candidate: Candidate) -> Path:
        """Where the frames of a candidate's video that a watching judge was shown are, beside the video
        (in the evaluation worker's folder; a run from before the split has them beside the training)."""
        video = candidate.training.video if candidate.training is not None and candidate.training.video else VIDEO_FILE
        return (self.training_dir(candidate) / video).parent / FRAMES_FOLDER

    def held_out_transitions(self, candidate: Candidate) -> Path:
        """The sample of a candidate's held-out transitions that pre-screening scores later rewards on."""
        folder = self.training_dir(candidate)
        newer = folder / EVALUATION_FOLDER / TRANSITIONS_FILE
        return newer if newer.exists() or not (folder / TRANSITIONS_FILE).exists() else folder / TRANSITIONS_FILE

    def prescreen_dir(self, candidate: Candidate) -> Path:
        return self.candidate_dir(candidate.id, candidate.round) / "prescreen"

    def preference_path(self, round_number: int) -> Path:
        return self.round_dir(round_number) / "preference.json"

    def preference_request_path(self, round_number: int) -> Path:
        return self.round_dir(round_number) / "preference_request.json"

    def final_dir(self) -> Path:
        return self.path / "final"

    def final_seed_dir(self, seed: int) -> Path:
        """Where the final evaluation's training on `seed` is (unless it is the round's own training)."""
        return self.final_dir() / f"seed_{seed}"

    def recipe_dir(self, recipe: Recipe) -> Path:
        """Where the best reward's trainings under another recipe are (`autoreward evaluate`): seed_<k>/, result.json."""
        return self.path / "recipes" / recipe.name

    def save_recipe_result(self, result: RecipeResult) -> None:
        write_json(self.recipe_dir(result.recipe) / "result.json", result)

    def recipe_results(self) -> list[RecipeResult]:
        """The recipes evaluated so far, in the order they finished."""
        paths = sorted((self.path / "recipes").glob("*/result.json"), key=lambda p: p.stat().st_mtime)
        return [read_json(path, RecipeResult) for path in paths]

    def final_training_dir(self, best: Candidate, seed: int) -> Path:
        """Where the final evaluation's training of `best` on `seed` is: its own folder, or the round's training
        (which the final evaluation reuses for the run's seed and budget)."""
        folder = self.final_seed_dir(seed)
        return folder if (folder / "training.json").is_file() else self.training_dir(best)

    def _budget_steps(self) -> int:
        if self._budget is None:
            self._budget = self.config().loop.budget.steps
        return self._budget

    # --- candidates and rounds ---------------------------------------------

    def save_candidate(self, candidate: Candidate) -> None:
        folder = self.candidate_dir(candidate.id, candidate.round)
        if candidate.code is not None:
            (folder / "reward.py").parent.mkdir(parents=True, exist_ok=True)
            (folder / "reward.py").write_text(candidate.code)
        write_json(folder / "candidate.json", candidate)
        last = candidate.attempts[-1] if candidate.attempts else None
        self._execute(
            "INSERT OR REPLACE INTO candidate VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                candidate.id,
                candidate.round,
                candidate.index,
                candidate.status,
                len(candidate.attempts),
                last.check.category.value if last and last.check else None,
                last.critique.verdict if last and last.critique else None,
                candidate.fitness,
                candidate.message,
            ),
        )

    def load_candidate(self, candidate_id: str, round_number: int | None = None) -> Candidate | None:
        path = self.candidate_dir(candidate_id, round_number) / "candidate.json"
        return read_json(path, Candidate) if path.exists() else None

    def save_round(self, result: RoundResult) -> None:
        write_json(self.round_dir(result.round) / "round.json", result)

    def load_round(self, round_number: int) -> RoundResult | None:
        path = self.round_dir(round_number) / "round.json"
        return read_json(path, RoundResult) if path.exists() else None

    def save_preference(self, preference: Preference) -> None:
        write_json(self.preference_path(preference.round), preference)

    def load_preference(self, round_number: int) -> Preference | None:
        """The round's recorded preference; a file that is not one raises ValueError saying why."""
        path = self.preference_path(round_number)
        if not path.exists():
            return None
        try:
            return read_json(path, Preference)
        except (ValueError, TypeError, AttributeError) as error:
            raise ValueError(f"{path} is not a preference ({error})") from None

    def save_preference_request(self, request: PreferenceRequest) -> None:
        write_json(self.preference_request_path(request.round), request)

    def load_preference_request(self, round_number: int) -> PreferenceRequest | None:
        path = self.preference_request_path(round_number)
        return read_json(path, PreferenceRequest) if path.exists() else None

    # --- a task given in words: its proposed score ------------------------------

    def save_score_proposal(self, proposal: ScoreProposal) -> None:
        write_json(self.path / "score_proposal.json", proposal)

    def load_score_proposal(self) -> ScoreProposal | None:
        path = self.path / "score_proposal.json"
        return read_json(path, ScoreProposal) if path.exists() else None

    def task_file_path(self) -> Path:
        """The task with its accepted score as a task file, to keep: `autoreward run runs/<run>/task.toml`."""
        return self.path / "task.toml"

    def write_task_file(self, text: str) -> None:
        partial = self.task_file_path().with_suffix(".toml.partial")
        partial.write_text(text)
        os.replace(partial, self.task_file_path())

    def adopt_task(self, task: Task) -> None:
        """Make `task` (a sentence task with its accepted score) the run's task, in its configuration."""
        write_json(self.path / "config.json", replace(self.config(), task=task))

    def candidates(self) -> list[Candidate]:
        """Every candidate recorded so far, in round and index order."""
        found = [read_json(p, Candidate) for p in self.path.glob("round_*/*/candidate.json")]
        return sorted(found, key=lambda c: (c.round, c.index))

    # --- the end -------------------------------------------------------------

    def save_final(self, result: FinalResult) -> None:
        write_json(self.final_dir() / "final.json", result)
        self._execute(
            "UPDATE run SET best_candidate = ?, best_fitness = ?, score_mean = ?, score_std = ?",
            (result.candidate_id, result.fitness_mean, result.score_mean, result.score_std),
        )

    def load_final(self) -> FinalResult | None:
        path = self.final_dir() / "final.json"
        return read_json(path, FinalResult) if path.exists() else None

    def mark_running(self) -> None:
        """This process now drives the run: its status is "running", and orchestrator.json says which process,
        so that a run whose process died shows as "stopped (process gone)", not "running" for ever."""
        write_json(self.path / ORCHESTRATOR_FILE, this_process())
        self.set_status("running")

    def driven(self, work: Callable[[], T]) -> T:
        """`work()` with this process driving the run (`mark_running`); an error that ends it marks the run failed
        with the error's first line. Interrupted is not an Exception: the command line marks that one."""
        self.mark_running()
        try:
            return work()
        except Exception as error:
            self.fail(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
            raise

    def status(self) -> str:
        with self._lock, closing(self._connect()) as db:
            row = db.execute("SELECT status FROM run").fetchone()
        return row[0] if row and row[0] else "unknown"

    def fail(self, reason: str) -> None:
        """The run ended on an error: "failed: <reason>", unless it already says why it stopped."""
        if not self.status().startswith(("stopped", "interrupted")):
            self.set_status(f"failed: {reason}")

    def set_status(self, status: str, best: Candidate | None = None) -> None:
        self._execute("UPDATE run SET status = ?", (status,))
        if best is not None:
            self._execute("UPDATE run SET best_candidate = ?, best_fitness = ?", (best.id, best.fitness))

    def log_event(self, event: str, **data) -> None:
        """Append one line to events.jsonl: what the loop started and finished, and when."""
        line = json.dumps({"at": now_iso(), "event": event, **data})
        with self._lock, open(self.path / "events.jsonl", "a") as stream:
            stream.write(line + "\n")

    def events(self) -> list[dict]:
        path = self.path / "events.jsonl"
        if not path.exists():
            return []
        # A line cut short by a kill is skipped, not fatal.
        return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]

    # --- LLM calls ---------------------------------------------------------

    def record_call(self, request: LLMRequest, reply: LLMReply) -> None:
        """Keep a call's prompt and reply as Markdown, and its tokens and cost in the index."""
        name = (request.tag or request.key()[:16]).replace("/", "__")
        parts = [
            f"# {request.tag}\n",
            f"model: {reply.model}  tokens in/out: {reply.prompt_tokens}/"
            f"{reply.completion_tokens}{'  (from cache)' if reply.cached else ''}\n",
        ]
        parts += [f"## {m.role}\n\n{message_text(m)}\n" for m in request.messages]
        parts.append(f"## reply\n\n{reply.text}\n")
        path = self.path / "calls" / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(parts))
        # Every reply in order, as a transcript the replay backend reads: the run replays from its own folder.
        with open(self.path / TRANSCRIPT_FILE, "a") as transcript:
            transcript.write(f"<!-- reply {request.tag or name} -->\n{reply.text.rstrip(chr(10))}\n\n")
        self._execute(
            "INSERT INTO llm_call VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request.tag,
                reply.model,
                reply.prompt_tokens,
                reply.completion_tokens,
                reply.cost_usd,
                reply.seconds,
                int(reply.cached),
                now_iso(),
            ),
        )

    def llm_totals(self) -> LLMTotals:
        """Calls, paid calls (a model service's, not from the cache), tokens and known cost over the whole run."""
        unpaid = ", ".join(f"'{model}'" for model in UNPAID_MODELS)
        with self._lock, closing(self._connect()) as db:
            row = db.execute(
                f"SELECT COUNT(*), SUM(CASE WHEN cached = 0 AND model NOT IN ({unpaid}) THEN 1 ELSE 0 END), "
                "SUM(prompt_tokens * (1 - cached)), SUM(completion_tokens * (1 - cached)), "
                "SUM(cost_usd * (1 - cached)), SUM(1 - cached) FROM llm_call"
            ).fetchone()
        calls, paid, tokens_in, tokens_out, cost, fresh = (v or 0 for v in row)
        return LLMTotals(calls, paid, fresh, tokens_in, tokens_out, cost)

    # --- the index -----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path / "index.sqlite", timeout=30)
        db.executescript(SCHEMA)
        return db

    def _execute(self, sql: str, parameters: tuple) -> None:
        with self._lock, closing(self._connect()) as db, db:
            db.execute(sql, parameters)


def _without_loop_models(data: dict) -> dict:
    """A stored configuration from before the model names lived only in the LLM settings: its loop settings
    held `model` and `vlm_model` too (copies, or a Python caller's own). They are moved to the LLM settings as
    the models that run asked: the loop's model where it named one (the designer asked it), and a vision model
    only where that differs from the one the LLM settings now give, so a resumed run asks, and its cache is
    keyed on, the same models."""
    loop, llm = data.get("loop"), data.get("llm")
    if not isinstance(loop, dict) or not ({"model", "vlm_model"} & loop.keys()) or not isinstance(llm, dict):
        return data
    loop, llm = dict(loop), dict(llm)
    model, vision = loop.pop("model", "") or "", loop.pop("vlm_model", "") or ""
    openai = llm.get("backend", "openai") == "openai"
    if model and (openai or not llm.get("model")):
        llm["model"] = model
    asked = vision or model  # what a watching judge named in its requests
    designer = llm.get("model") or LLMSettings.model
    if openai and asked and asked != (llm.get("vlm_model") or designer):
        llm["vlm_model"] = asked
    return {**data, "loop": loop, "llm": llm}


def start_run(runs_dir: Path, task: Task, loop: LoopConfig, llm: LLMSettings, kind: str = "design") -> RunStore:
    """A new run folder `runs/<task>__<kind>__s<seed>__<time>/` holding the run's configuration (`kind`: design,
    or chat for an interactive session)."""
    folder = new_run_dir(runs_dir, task.id, kind, loop.seed)
    config = RunConfig(
        run_id=folder.name,
        task=task,
        loop=loop,
        llm=llm,
        created=now_iso(),
        autoreward_version=autoreward_version(),
    )
    return RunStore.create(folder, config)


# --- is the process that drives a run still there? ------------------------------------------------

ORCHESTRATOR_FILE = "orchestrator.json"
# Statuses a run keeps once its process has ended; any other (running, waiting, final evaluation) needs one.
ENDED = ("finished", "failed", "interrupted", "stopped")


def this_process() -> dict:
    """This process as a run folder records it: host, pid and start time (a reused pid has another)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_ticks(os.getpid())}


def process_gone(record: dict) -> bool:
    """Whether the recorded process has ended; False where it cannot be told (another host, no /proc)."""
    if record.get("host") != socket.gethostname() or not Path("/proc/self/stat").exists():
        return False
    return _start_ticks(int(record["pid"])) != record.get("started")


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat, field 22); None if there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])  # field 22 of the line; the first two (pid, name) are before the ")"


def shown_status(folder: Path, status: str | None) -> str:
    """The index's status, or "stopped (process gone)" for a run whose process died without saying so."""
    status = status or "unknown"
    if status.startswith(ENDED):
        return status
    path = Path(folder) / ORCHESTRATOR_FILE
    try:
        record = read_json(path) if path.exists() else None
    except ValueError:
        record = None
    return "stopped (process gone)" if record is not None and process_gone(record) else status


def run_summaries(root: Path) -> list[RunSummary]:
    """One row per run folder under `root` that has an index, newest first."""
    rows = [run_summary(index.parent) for index in sorted(Path(root).glob("*/index.sqlite"))]
    return sorted((r for r in rows if r is not None), key=lambda r: r.created or "", reverse=True)


def run_summary(folder: Path) -> RunSummary | None:
    """A run's row of its index (status, best, scores) and its path; None when it has none."""
    index = Path(folder) / "index.sqlite"
    if not index.exists():
        return None
    with closing(sqlite3.connect(index)) as db:
        db.row_factory = sqlite3.Row
        try:
            row = db.execute("SELECT * FROM run").fetchone()
        except sqlite3.DatabaseError:
            return None  # not a design run's index
    if row is None:
        return None
    fields = dict(row) | {"status": shown_status(folder, row["status"])}
    return RunSummary(path=str(Path(folder)), **fields)
