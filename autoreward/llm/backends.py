"""LLM access: one call, messages in, text out, with token counts.

Backends, each with one method `complete(request) -> LLMReply`:

- `OpenAIChat`: any server speaking the chat-completions protocol through the
  `openai` package — OpenAI, vLLM, Ollama, LM Studio, llama.cpp's server.
  Retries with backoff (honouring Retry-After) on rate limits, server errors,
  timeouts and dropped connections; everything else is one clear sentence.
- `ReplayLLM`: answers read from a transcript file, matched by the request's
  tag, for demos and tests.
- `ManualLLM`: writes each prompt to a file and waits for the answer in a
  file beside it, so someone with only a chat window can drive a run.

Each backend's `model` is the model it asks when a request names none (the
replay and manual backends name none: ""); the run's model lives only in its
`LLMSettings`. `CachedLLM` wraps any of them and stores every reply on disk by
the hash of its request with that model filled in, so a resumed or repeated
run never pays twice.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Protocol

from autoreward.config import LLMSettings, LoopConfig
from autoreward.errors import LLMError
from autoreward.serialize import to_dict


@dataclass(frozen=True)
class Image:
    """A picture sent after a message's text, e.g. a frame of a policy's video: a file, never its bytes.

    The request's cache key holds `sha256`, the file's content hash, not its path; the bytes are read only
    when a server is sent them, so a recorded or cached call names the file and does not copy it.
    """

    path: str
    sha256: str
    caption: str = ""  # sent as text just before the image, e.g. "r1c0, frame 2 of 6"
    media_type: str = "image/png"
    width: int = 0
    height: int = 0

    @classmethod
    def of_file(cls, path: Path, caption: str = "", width: int = 0, height: int = 0) -> "Image":
        media = "image/jpeg" if Path(path).suffix.lower() in (".jpg", ".jpeg") else "image/png"
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return cls(str(path), digest, caption, media, width, height)

    def data_url(self) -> str:
        try:
            data = Path(self.path).read_bytes()
        except OSError as error:
            raise LLMError(f"cannot read the image {self.path} to send it: {error.strerror}") from None
        return f"data:{self.media_type};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user" or "assistant"
    content: str
    images: tuple[Image, ...] = ()  # sent after the text as image content parts (a vision model reads them)


@dataclass(frozen=True)
class LLMRequest:
    """One completion request. `sample` tells apart identical prompts that should get different answers."""

    messages: tuple[Message, ...]
    model: str = ""  # "": the backend's own model
    temperature: float = 1.0
    max_tokens: int | None = None
    sample: int = 0
    tag: str = ""  # what the call is for, e.g. "round1/designer/3"; names files, matches replays; not hashed

    def key(self) -> str:
        """The cache key: a hash of everything that determines the answer (the tag is not)."""
        payload = to_dict(replace(self, tag=""))
        for message in payload["messages"]:  # an image by its content, wherever its file is
            for image in message["images"]:
                del image["path"]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class LLMReply:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    cached: bool = False
    seconds: float = 0.0


class LLM(Protocol):
    def complete(self, request: LLMRequest) -> LLMReply: ...


def resolved(llm: LLM, request: LLMRequest) -> LLMRequest:
    """`request` with the model `llm` will answer it with: its own, the backend's `model` where it names none.

    A backend without a `model` attribute (a test's scripted fake) names none, like the replay backend."""
    return request if request.model else replace(request, model=getattr(llm, "model", ""))


# Prices in USD per million tokens (input, output), for the cost column; unknown models cost None.
PRICES_PER_MILLION = {
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
}
OPENAI_URL = "https://api.openai.com/v1"
LOCAL_KEY = "not-needed"  # local servers ignore the key, but the openai client insists on one


class OpenAIChat:
    """Any OpenAI-compatible chat-completions server."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_seconds: float = 180.0,
        max_attempts: int = 6,
        backoff_seconds: float = 2.0,
        max_reply_chars: int = 200_000,
        sleep: Callable[[float], None] = time.sleep,
    ):
        import openai

        self.model = model
        self.base_url = base_url or OPENAI_URL
        if not api_key and self.base_url == OPENAI_URL:
            raise LLMError(
                "no API key: set OPENAI_API_KEY (or name the variable holding it with --api-key-env); for a local "
                "server such as vLLM or Ollama, pass its --base-url instead"
            )
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or LOCAL_KEY, timeout=timeout_seconds, max_retries=0
        )
        self._openai = openai
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_reply_chars = max_reply_chars
        self._sleep = sleep

    def complete(self, request: LLMRequest) -> LLMReply:
        openai = self._openai
        model = request.model or self.model
        for attempt in range(1, self.max_attempts + 1):
            started = time.monotonic()
            try:
                response = self._client.chat.completions.create(
                    model=model,
                    messages=[_message_payload(m) for m in request.messages],
                    temperature=request.temperature,
                    seed=request.sample,  # distinct, reproducible samples where the server honours seeds
                    **({"max_tokens": request.max_tokens} if request.max_tokens else {}),
                )
                return self._reply(response, model, time.monotonic() - started)
            except openai.AuthenticationError:
                raise LLMError(
                    f"the LLM server at {self.base_url} refused the API key (HTTP 401): check OPENAI_API_KEY"
                ) from None
            except openai.NotFoundError:
                raise LLMError(
                    f"the LLM server at {self.base_url} has no model {model!r} (HTTP 404): check --model"
                ) from None
            except openai.BadRequestError as error:
                raise LLMError(
                    f"the LLM server at {self.base_url} rejected the request (HTTP 400): {_brief(error)}"
                ) from None
            except (
                openai.RateLimitError,
                openai.InternalServerError,
                openai.APITimeoutError,
                openai.APIConnectionError,
                openai.APIResponseValidationError,
                json.JSONDecodeError,
                _MalformedReply,
            ) as error:
                if attempt == self.max_attempts:
                    raise LLMError(self._give_up_message(error)) from None
                self._sleep(self._delay(error, attempt))
            except openai.APIStatusError as error:
                if error.status_code < 500 and error.status_code != 408:
                    raise LLMError(
                        f"the LLM server at {self.base_url} answered HTTP {error.status_code}: {_brief(error)}"
                    ) from None
                if attempt == self.max_attempts:
                    raise LLMError(self._give_up_message(error)) from None
                self._sleep(self._delay(error, attempt))
        raise AssertionError("unreachable")

    def _reply(self, response, model: str, seconds: float) -> LLMReply:
        choices = getattr(response, "choices", None)
        if not choices or choices[0].message is None or choices[0].message.content is None:
            raise _MalformedReply("the reply has no message content")
        text = choices[0].message.content
        if len(text) > self.max_reply_chars:
            text = text[: self.max_reply_chars]  # a runaway reply: keep the start, where code usually is
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        price = PRICES_PER_MILLION.get(model)
        cost = None if price is None else (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6
        return LLMReply(text, model, prompt_tokens, completion_tokens, cost, seconds=seconds)

    def _delay(self, error, attempt: int) -> float:
        response = getattr(error, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after:
            try:
                return min(float(retry_after), 120.0)
            except ValueError:
                pass
        return self.backoff_seconds * 2 ** (attempt - 1) * (0.5 + random.random() / 2)

    def _give_up_message(self, error) -> str:
        what = {
            "RateLimitError": "kept answering 'rate limited' (HTTP 429)",
            "InternalServerError": "kept failing with server errors (HTTP 5xx)",
            "APITimeoutError": "did not answer in time",
            "APIConnectionError": "could not be reached",
        }.get(type(error).__name__, f"kept sending unusable replies ({_brief(error)})")
        return f"the LLM server at {self.base_url} {what} after {self.max_attempts} attempts; check that it is running and reachable"


class _MalformedReply(Exception):
    pass


def _message_payload(message: Message) -> dict:
    """A message as the chat-completions API takes it: plain text, or content parts with its images."""
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict] = [{"type": "text", "text": message.content}]
    for image in message.images:
        if image.caption:
            parts.append({"type": "text", "text": image.caption})
        parts.append({"type": "image_url", "image_url": {"url": image.data_url()}})
    return {"role": message.role, "content": parts}


def _brief(error) -> str:
    text = str(getattr(error, "message", None) or error)
    return text if len(text) < 300 else text[:300] + "..."


def message_text(message: Message) -> str:
    """A message as a person reads it: its text, then each image as a Markdown link to its file."""
    shown = [f"![{image.caption or 'image'}]({image.path})" for image in message.images]
    return "\n\n".join([message.content, *shown]) if shown else message.content


class ReplayLLM:
    """Answers from a transcript, matched by the request's tag; several replies under one tag go out in order.

    Two formats: JSON lines of {"tag": ..., "reply": ...} (optional "model" and
    token counts), or Markdown (`.md`) where each reply follows a line
    `<!-- reply TAG -->`, which reads well when the replies hold code. A tag
    may hold shell wildcards (`r*/judge`); an exact tag is preferred. A wildcard
    tag's replies go out in order and its last one answers every later call it
    matches, so one `r*/judge` reply serves every round of a long replay.
    """

    MARKER = re.compile(r"^<!-- reply (\S+) -->[ \t]*$", re.MULTILINE)
    model = ""  # answers by tag whatever model a request names

    def __init__(self, transcript: Path):
        self.path = Path(transcript)
        self._replies: dict[str, list[dict]] = {}
        try:
            text = self.path.read_text()
        except OSError as error:
            raise LLMError(f"cannot read the transcript {self.path}: {error.strerror}") from None
        entries = self._markdown(text) if self.path.suffix == ".md" else self._json_lines(text)
        for entry in entries:
            self._replies.setdefault(entry["tag"], []).append(entry)

    def _json_lines(self, text: str) -> list[dict]:
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                entry["tag"], str(entry["reply"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise LLMError(f"{self.path}, line {number}: expected a JSON object with 'tag' and 'reply'") from None
            entries.append(entry)
        return entries

    def _markdown(self, text: str) -> list[dict]:
        pieces = self.MARKER.split(text)  # [preamble, tag, reply, tag, reply, ...]
        if len(pieces) < 3:
            raise LLMError(f"{self.path}: no replies found; each reply follows a line '<!-- reply TAG -->'")
        return [{"tag": tag, "reply": reply.strip("\n") + "\n"} for tag, reply in zip(pieces[1::2], pieces[2::2])]

    def complete(self, request: LLMRequest) -> LLMReply:
        queue = self._replies.get(request.tag)
        wildcard = False
        if not queue:  # a tag with wildcards, e.g. "r1/*/analyzer", answers whichever candidate asks
            queue = next(
                (q for pattern, q in self._replies.items() if q and fnmatch.fnmatchcase(request.tag, pattern)), None
            )
            wildcard = True
        if not queue:
            raise LLMError(f"the transcript {self.path} has no (more) replies for {request.tag!r}")
        entry = queue[0] if wildcard and len(queue) == 1 else queue.pop(0)  # a wildcard's last reply stays
        return LLMReply(
            entry["reply"],
            entry.get("model", "replay"),
            int(entry.get("prompt_tokens", 0)),
            int(entry.get("completion_tokens", 0)),
        )


class ManualLLM:
    """A person answers: the prompt goes to `<folder>/<tag>.prompt.md`, the answer is read from `<tag>.answer.md`.

    Only a complete answer is read: one whose last line is `EOF` (left out of the
    answer) is read at once; any other once it has not changed for
    `settle_seconds`, so write it elsewhere and move it in, or end it with `EOF`.
    When standard input is a terminal, the answer may also be pasted there,
    ended by a line holding only `EOF`.
    """

    model = ""  # a person answers, whatever model a request names

    def __init__(
        self,
        folder: Path,
        poll_seconds: float = 1.0,
        timeout_seconds: float | None = None,
        interactive: bool | None = None,
        announce: Callable[[str], None] = print,
        settle_seconds: float = 3.0,
    ):
        self.folder = Path(folder)
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self.timeout_seconds = timeout_seconds
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self._announce = announce

    def complete(self, request: LLMRequest) -> LLMReply:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = request.tag.replace("/", "__") or request.key()[:12]
        prompt_path = self.folder / f"{name}.prompt.md"
        answer_path = self.folder / f"{name}.answer.md"
        prompt_path.write_text("\n\n".join(f"## {m.role}\n\n{message_text(m)}" for m in request.messages) + "\n")
        self._announce(
            f"prompt written to {prompt_path}; put the answer in {answer_path} (end it with a line 'EOF', or "
            "write it elsewhere and move it in)"
            + (", or paste it here, ending with a line 'EOF'" if self.interactive else "")
        )
        if self.interactive:
            lines = []
            for line in sys.stdin:
                if line.rstrip("\n") == "EOF":
                    break
                lines.append(line)
            answer_path.write_text("".join(lines) + "EOF\n")
        started = time.monotonic()
        seen: tuple[int, int] | None = None  # the answer file's (size, mtime) when last looked at
        since = 0.0
        while True:
            if answer_path.exists():
                text = answer_path.read_text()
                lines = text.rstrip("\n").splitlines()
                if lines and lines[-1].strip() == "EOF":
                    return LLMReply("\n".join(lines[:-1]) + "\n", "manual")
                stat = answer_path.stat()
                if (stat.st_size, stat.st_mtime_ns) != seen:
                    seen, since = (stat.st_size, stat.st_mtime_ns), time.monotonic()
                elif text.strip() and time.monotonic() - since >= self.settle_seconds:
                    return LLMReply(text, "manual")  # unchanged for a while: moved in, or written whole
            if self.timeout_seconds is not None and time.monotonic() - started > self.timeout_seconds:
                if seen is None:
                    raise LLMError(f"no answer appeared in {answer_path} within {self.timeout_seconds:g} s")
                raise LLMError(
                    f"the answer in {answer_path} was still being written after {self.timeout_seconds:g} s; "
                    "end it with a line 'EOF', or write it elsewhere and move it in"
                )
            time.sleep(min(self.poll_seconds, self.settle_seconds / 4))


class CachedLLM:
    """Stores every reply under the hash of its request; a repeated request is answered from disk.

    The hash is of the request with the model the backend will use filled in (`resolved`): a request naming
    no model and one naming the backend's own are the same request, so a run folder's cache from before the
    requests left their model to the backend is still hit."""

    def __init__(self, inner: LLM, folder: Path):
        self.inner = inner
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    @property
    def model(self) -> str:
        return getattr(self.inner, "model", "")

    def _path(self, request: LLMRequest) -> Path:
        key = request.key()
        return self.folder / key[:2] / f"{key}.json"

    def complete(self, request: LLMRequest) -> LLMReply:
        request = resolved(self.inner, request)
        path = self._path(request)
        if path.exists():
            try:
                data = json.loads(path.read_text())
                self.hits += 1
                return replace(LLMReply(**data["reply"]), cached=True, seconds=0.0)
            except (json.JSONDecodeError, KeyError, TypeError):
                path.unlink()  # a torn write from an interrupted run: ask again
        reply = self.inner.complete(request)
        self.misses += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"request": to_dict(request), "reply": to_dict(reply)}, indent=1))
        os.replace(temporary, path)
        return reply


def connect(settings: LLMSettings, manual_folder: Path | None, environment: dict[str, str] | None = None) -> LLM:
    """The backend `settings` name. The key is read from `environment` (default: os.environ), never stored."""
    if settings.backend == "replay":
        if not settings.transcript:
            raise LLMError("the replay backend needs a transcript file: pass --transcript FILE")
        return ReplayLLM(Path(settings.transcript))
    if settings.backend == "manual":
        if manual_folder is None:
            raise ValueError("the manual backend needs a folder for its prompt and answer files")
        return ManualLLM(manual_folder)
    environment = os.environ if environment is None else environment
    key = environment.get(settings.api_key_variable)
    if not key and settings.base_url in (None, OPENAI_URL):
        raise LLMError(
            f"no API key: set {settings.api_key_variable} (or name another variable with --api-key-env); "
            "for a local server such as vLLM or Ollama, pass its --base-url instead"
        )
    return OpenAIChat(
        settings.model, settings.base_url, key, timeout_seconds=settings.timeout_seconds, max_attempts=settings.attempts
    )


def ask(llm: LLM, config: LoopConfig, messages, tag: str, *, sample: int = 0, temperature: float | None = None) -> str:
    """One call of the design loop, with the run's token limit and temperature (unless one is given); the
    model is `llm`'s own (the designer's, or a watching judge's: `loop.design_run`)."""
    request = LLMRequest(
        messages=tuple(messages),
        temperature=config.temperature if temperature is None else temperature,
        max_tokens=config.max_tokens,
        sample=sample,
        tag=tag,
    )
    return llm.complete(request).text
