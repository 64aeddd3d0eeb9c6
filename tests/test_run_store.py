"""The run folder's records and index: what a run says about itself (version, LLM use), read back."""

from __future__ import annotations

import importlib.metadata
import json

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


def _old_style(store, **loop_models) -> None:
    """The run's config.json as written before the model names lived only in the LLM settings."""
    data = json.loads((store.path / "config.json").read_text())
    data["loop"].update(loop_models)
    (store.path / "config.json").write_text(json.dumps(data))


def test_an_old_config_with_the_models_in_its_loop_settings_opens_with_them_in_the_llm_settings(tmp_path):
    task = find_task("hopper_forward")
    copied = start_run(tmp_path / "a", task, LoopConfig(), LLMSettings(model="m"))
    _old_style(copied, model="m", vlm_model="m")  # the copies api.loop_config made
    assert copied.config().llm == LLMSettings(model="m")
    own = start_run(tmp_path / "b", task, LoopConfig(), LLMSettings(model="m"))
    _old_style(own, model="coder", vlm_model="vision")  # a Python caller's own: what that run asked
    assert (own.config().llm.model, own.config().llm.vlm_model) == ("coder", "vision")
    replayed = start_run(tmp_path / "c", task, LoopConfig(), LLMSettings(backend="replay", model=""))
    _old_style(replayed, model="", vlm_model="")
    assert replayed.config().llm == LLMSettings(backend="replay", model="")


class _Answers:
    """A backend naming no model of its own: it stores cache entries under the model each request names."""

    def complete(self, request: LLMRequest) -> LLMReply:
        return LLMReply(f"cached for {request.model}", request.model)


def test_an_old_run_resumes_and_its_designer_and_watching_judge_hit_the_cache_it_wrote(tmp_path, monkeypatch):
    from autoreward.llm.backends import CachedLLM, ask
    from autoreward.loop.design_run import open_design

    from .chat_server import ChatServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    messages = (Message("user", "design a reward"),)
    with ChatServer() as server:  # answers nothing: every call must come from the cache
        settings = LLMSettings(model="test-model", base_url=server.url, vlm_model="test-vision", attempts=1)
        store = start_run(tmp_path, find_task("hopper_forward"), LoopConfig(), settings)
        _old_style(store, model="test-model", vlm_model="test-vision")
        loop = store.config().loop
        # The requests the old code made: each named its model (the judge's at temperature 0).
        old = CachedLLM(_Answers(), store.path / "llm_cache")
        old.complete(LLMRequest(messages, "test-model", loop.temperature, loop.max_tokens, tag="r1/c0/designer"))
        old.complete(LLMRequest(messages, "test-vision", 0.0, loop.max_tokens, tag="r1/judge"))

        session = open_design(tmp_path, resume=store.path)
        assert ask(session.llm, loop, messages, "r1/c0/designer") == "cached for test-model"
        assert ask(session.judge_llm, loop, messages, "r1/judge", temperature=0.0) == "cached for test-vision"
        assert server.requests == []
