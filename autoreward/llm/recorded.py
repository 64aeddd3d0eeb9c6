"""Every LLM call kept: a wrapper that hands each request and its reply to a recorder (the run folder)."""

from __future__ import annotations

from typing import Protocol

from autoreward.llm.backends import LLM, LLMReply, LLMRequest


class CallRecorder(Protocol):
    """Where calls are kept; `RunStore.record_call` is one."""

    def record_call(self, request: LLMRequest, reply: LLMReply) -> None: ...


class RecordedLLM:
    """Any LLM, with every call given to `recorder` (the run folder keeps prompt, reply, tokens and cost)."""

    def __init__(self, inner: LLM, recorder: CallRecorder):
        self.inner = inner
        self.recorder = recorder

    @property
    def model(self) -> str:
        """The model `inner` asks where a request names none (the reply says which one answered)."""
        return getattr(self.inner, "model", "")

    def complete(self, request: LLMRequest) -> LLMReply:
        reply = self.inner.complete(request)
        self.recorder.record_call(request, reply)
        return reply
