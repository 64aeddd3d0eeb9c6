"""The run folder's records and index: what a run says about itself (version, LLM use), read back."""

from __future__ import annotations

import importlib.metadata

from autoreward.config import LLMSettings, LoopConfig
from autoreward.llm.backends import LLMReply, LLMRequest, Message
from autoreward.loop.run_store import start_run
from autoreward.resources import autoreward_version
from autoreward.task.files import find_task


def test_a_run_starts_where_the_package_has_no_installed_metadata(tmp_path, monkeypatch):
    def no_metadata(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", no_metadata)  # a source tree on PYTHONPATH, not installed
    assert autoreward_version() == "unknown"
    store = start_run(tmp_path, find_task("hopper_forward"), LoopConfig(), LLMSettings())
    assert store.config().autoreward_version == "unknown"


def test_only_calls_a_model_service_answered_are_counted_as_paid(tmp_path):
    store = start_run(tmp_path, find_task("hopper_forward"), LoopConfig(), LLMSettings())
    request = LLMRequest((Message("user", "design a reward"),), tag="r1/c0/designer")
    store.record_call(request, LLMReply("a", "gpt-4o-mini", 100, 20, cost_usd=0.001))  # paid
    store.record_call(request, LLMReply("a", "gpt-4o-mini", 100, 20, cached=True))  # from the cache
    store.record_call(request, LLMReply("b", "replay", 100, 20))  # a transcript
    store.record_call(request, LLMReply("c", "manual"))  # a person
    totals = store.llm_totals()
    assert (totals.calls, totals.fresh_calls, totals.paid_calls) == (4, 3, 1)
    assert totals.cost_usd == 0.001


def test_a_final_seed_is_read_from_its_own_folder_else_from_the_rounds_training(tmp_path):
    from autoreward.records import Candidate

    store = start_run(tmp_path, find_task("half_cheetah_backward"), LoopConfig(), LLMSettings(backend="replay"))
    best = Candidate(id="r1c0", round=1, index=0, status="trained", attempts=())
    assert store.final_training_dir(best, 0) == store.round_dir(1) / "r1c0" / "training"
    (store.final_seed_dir(1)).mkdir(parents=True)
    assert store.final_training_dir(best, 1) == store.round_dir(1) / "r1c0" / "training"  # begun, never finished
    (store.final_seed_dir(1) / "training.json").write_text("{}")
    assert store.final_training_dir(best, 1) == store.final_seed_dir(1)
