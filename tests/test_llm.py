"""LLM access through the real openai client against a real loopback server, replay, manual and the cache."""

import json
import threading
import time

import pytest

from autoreward.errors import LLMError
from autoreward.llm.backends import CachedLLM, LLMRequest, ManualLLM, Message, OpenAIChat, ReplayLLM

from .chat_server import ChatServer, Drop, Hang, Reply, Status, Truncate

REQUEST = LLMRequest(messages=(Message("system", "You write rewards."), Message("user", "Run backwards.")), tag="t")


def client(server: ChatServer, **kwargs) -> OpenAIChat:
    return OpenAIChat("test-model", base_url=server.url, api_key="sk-test", sleep=lambda s: None, **kwargs)


def test_a_reply_carries_text_tokens_and_the_messages_sent():
    with ChatServer([Reply("def compute_reward(...)", 120, 30)]) as server:
        reply = client(server).complete(REQUEST)
    assert reply.text == "def compute_reward(...)"
    assert (reply.prompt_tokens, reply.completion_tokens) == (120, 30)
    assert server.requests[0]["messages"][1] == {"role": "user", "content": "Run backwards."}
    assert server.requests[0]["model"] == "test-model"
    assert server.headers[0]["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    "fault",
    [
        Status(429, {"retry-after": "0"}),
        Status(500),
        Status(503),
        Drop(),
        Truncate("half a reply"),
    ],
    ids=["rate-limit", "500", "503", "dropped-connection", "truncated-body"],
)
def test_transient_faults_are_retried(fault):
    with ChatServer([fault, fault, Reply("ok")]) as server:
        reply = client(server).complete(REQUEST)
    assert reply.text == "ok" and len(server.requests) == 3


def test_a_timeout_is_retried():
    with ChatServer([Hang(2.0), Reply("ok")]) as server:
        reply = client(server, timeout_seconds=0.5).complete(REQUEST)
    assert reply.text == "ok"


def test_retry_after_is_honoured():
    waits = []
    with ChatServer([Status(429, {"retry-after": "7"}), Reply("ok")]) as server:
        llm = OpenAIChat("m", base_url=server.url, api_key="k", sleep=waits.append)
        llm.complete(REQUEST)
    assert waits == [7.0]


def test_giving_up_is_one_clear_sentence():
    with ChatServer(default=None) as server:  # every request: HTTP 500
        with pytest.raises(LLMError, match=r"kept failing with server errors \(HTTP 5xx\) after 3 attempts"):
            client(server, max_attempts=3).complete(REQUEST)


@pytest.mark.parametrize(
    "status, message",
    [(401, "refused the API key"), (404, "has no model 'test-model'"), (400, "rejected the request")],
)
def test_fatal_answers_are_not_retried(status, message):
    with ChatServer([Status(status)], default=Reply("never")) as server:
        with pytest.raises(LLMError, match=message):
            client(server).complete(REQUEST)
    assert len(server.requests) == 1


def test_an_unreachable_server_is_one_sentence():
    with ChatServer() as server:
        url = server.url
    with pytest.raises(LLMError, match="could not be reached after 2 attempts"):
        OpenAIChat("m", base_url=url, api_key="k", max_attempts=2, sleep=lambda s: None).complete(REQUEST)


def test_a_missing_key_for_openai_is_one_sentence(monkeypatch):
    with pytest.raises(LLMError, match="no API key: set OPENAI_API_KEY"):
        OpenAIChat("gpt-4o", api_key=None)


def test_a_reply_of_megabytes_is_cut_to_size():
    with ChatServer([Reply("x" * 3_000_000)]) as server:
        reply = client(server).complete(REQUEST)
    assert len(reply.text) == 200_000


def test_the_cache_answers_a_repeated_request_without_calling(tmp_path):
    with ChatServer([Reply("first")], default=None) as server:
        cached = CachedLLM(client(server), tmp_path)
        assert cached.complete(REQUEST).text == "first"
        again = cached.complete(REQUEST)
    assert again.text == "first" and again.cached
    assert (cached.hits, cached.misses) == (1, 1) and len(server.requests) == 1
    # a different sample of the same prompt is a different request
    assert LLMRequest(REQUEST.messages, sample=1).key() != REQUEST.key()
    assert LLMRequest(REQUEST.messages, tag="other").key() == LLMRequest(REQUEST.messages).key()


def test_the_cache_keys_on_the_model_the_backend_uses(tmp_path):
    # A run folder from before requests left their model to the backend: its entries name the model.
    named = LLMRequest(REQUEST.messages, model="test-model", tag="t")
    key = named.key()
    (tmp_path / key[:2]).mkdir()
    old = {"request": {}, "reply": {"text": "from the old cache", "model": "test-model", "prompt_tokens": 3}}
    (tmp_path / key[:2] / f"{key}.json").write_text(json.dumps(old))
    with ChatServer([Reply("asked")]) as server:
        cached = CachedLLM(client(server), tmp_path)
        reply = cached.complete(REQUEST)  # names no model: the backend's, test-model
        other = cached.complete(LLMRequest(REQUEST.messages, model="other-model", tag="t"))
    assert (reply.text, reply.model, reply.cached) == ("from the old cache", "test-model", True)
    assert other.text == "asked" and [r["model"] for r in server.requests] == ["other-model"]
    # The new entry is stored with the model it was asked of; a backend without a model keys as before.
    other_key = LLMRequest(REQUEST.messages, model="other-model").key()
    assert json.loads((tmp_path / other_key[:2] / f"{other_key}.json").read_text())["request"]["model"] == "other-model"
    replay = tmp_path / "t.jsonl"
    replay.write_text('{"tag": "t", "reply": "replayed"}\n')
    CachedLLM(ReplayLLM(replay), tmp_path / "replay").complete(REQUEST)
    assert (tmp_path / "replay" / REQUEST.key()[:2] / f"{REQUEST.key()}.json").exists()


def test_a_torn_cache_file_is_asked_again(tmp_path):
    with ChatServer([Reply("one"), Reply("two")]) as server:
        cached = CachedLLM(client(server), tmp_path)
        cached.complete(REQUEST)
        (path,) = tmp_path.rglob("*.json")
        path.write_text('{"reply": {"te')
        assert cached.complete(REQUEST).text == "two"


def test_replay_gives_replies_by_tag_in_order(tmp_path):
    transcript = tmp_path / "t.jsonl"
    transcript.write_text('{"tag": "t", "reply": "a"}\n{"tag": "t", "reply": "b"}\n\n{"tag": "u", "reply": "c"}\n')
    replay = ReplayLLM(transcript)
    assert [replay.complete(REQUEST).text for _ in range(2)] == ["a", "b"]
    with pytest.raises(LLMError, match="no \\(more\\) replies for 't'"):
        replay.complete(REQUEST)
    transcript.write_text('{"tag": "t"}\n')
    with pytest.raises(LLMError, match="line 1: expected a JSON object with 'tag' and 'reply'"):
        ReplayLLM(transcript)


def test_manual_reads_only_a_complete_answer_not_one_still_being_written(tmp_path):
    manual = ManualLLM(tmp_path, poll_seconds=0.05, timeout_seconds=20, interactive=False, announce=lambda text: None)
    answer = tmp_path / "t.answer.md"

    def slow_editor():  # writes half, thinks for a second, writes the rest
        with open(answer, "w") as stream:
            stream.write("import numpy as np\n")
            stream.flush()
            time.sleep(1.0)
            stream.write("def compute_reward(state, action, next_state):\n    ...\nEOF\n")

    threading.Timer(0.2, slow_editor).start()
    text = manual.complete(REQUEST).text
    assert text == "import numpy as np\ndef compute_reward(state, action, next_state):\n    ...\n"


def test_a_wildcard_reply_answers_every_call_it_matches(tmp_path):
    transcript = tmp_path / "t.jsonl"
    lines = [{"tag": "r*/judge", "reply": "BEST: r1c0"}, {"tag": "r1/c0/designer", "reply": "one"}]
    transcript.write_text("".join(json.dumps(line) + "\n" for line in lines))
    replay = ReplayLLM(transcript)
    judged = [replay.complete(LLMRequest(REQUEST.messages, tag=f"r{n}/judge")).text for n in (1, 2, 3)]
    assert judged == ["BEST: r1c0"] * 3
    assert replay.complete(LLMRequest(REQUEST.messages, tag="r1/c0/designer")).text == "one"
    with pytest.raises(LLMError, match="no \\(more\\) replies"):  # an exact tag is still answered once
        replay.complete(LLMRequest(REQUEST.messages, tag="r1/c0/designer"))


def test_manual_waits_for_the_answer_file(tmp_path):
    messages = []
    manual = ManualLLM(tmp_path, poll_seconds=0.05, timeout_seconds=10, interactive=False, announce=messages.append)
    answer = tmp_path / "t.answer.md"
    threading.Timer(0.3, lambda: answer.write_text("my reward")).start()
    assert manual.complete(REQUEST).text == "my reward"
    assert "Run backwards." in (tmp_path / "t.prompt.md").read_text()
    assert "t.answer.md" in messages[0]
    with pytest.raises(LLMError, match="no answer appeared"):
        ManualLLM(tmp_path, poll_seconds=0.05, timeout_seconds=0.2, interactive=False, announce=print).complete(
            LLMRequest(REQUEST.messages, tag="never")
        )


def test_a_missing_key_names_the_flag_that_exists():
    with pytest.raises(LLMError, match="name the variable holding it with --api-key-env") as missing:
        OpenAIChat("gpt-4o-mini", base_url=None, api_key=None)
    assert "--api-key)" not in str(missing.value)  # there is no --api-key flag: a key never goes on a command line
