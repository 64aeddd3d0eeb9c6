"""A real HTTP server on loopback that speaks the chat-completions protocol, with scripted faults.

Each POST to /v1/chat/completions takes the next step of the script:

- `Reply(text)`: a well-formed completion;
- `Status(code, headers, body)`: an error status (429 with Retry-After, 500, 401, 404...);
- `Hang(seconds)`: answer nothing for a while (the client times out);
- `Drop()`: close the connection without answering;
- `Truncate(text)`: promise more bytes than are sent, then close.

When the script runs out, the server asks `responder(body)` for the step if
one is given (a scripted LLM that answers by what it is asked), else
answers with `default` if set, else 500. Every request body is kept in
`requests`, for tests to inspect.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    text: str
    prompt_tokens: int = 11
    completion_tokens: int = 7


@dataclass
class Status:
    code: int
    headers: dict = field(default_factory=dict)
    body: dict = field(default_factory=lambda: {"error": {"message": "scripted failure", "type": "server_error"}})


@dataclass
class Hang:
    seconds: float


@dataclass
class Drop:
    pass


@dataclass
class Truncate:
    text: str


def text_of(content) -> str:
    """A message's text: its content, or the text parts of content parts (a message sent with images)."""
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part.get("type") == "text")


def completion(text: str, model: str, prompt_tokens: int = 11, completion_tokens: int = 7) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ChatServer:
    def __init__(self, script=(), default: Reply | None = None, responder=None):
        self.script = list(script)
        self.default = default
        self.responder = responder
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    step = server.script.pop(0) if server.script else server.default
                if step is None and server.responder is not None:
                    step = server.responder(body)
                model = body.get("model", "test-model")
                if step is None:
                    step = Status(500)
                if isinstance(step, Reply):
                    self._send(200, completion(step.text, model, step.prompt_tokens, step.completion_tokens))
                elif isinstance(step, Status):
                    self._send(step.code, step.body, step.headers)
                elif isinstance(step, Hang):
                    time.sleep(step.seconds)
                    self.close_connection = True
                elif isinstance(step, Drop):
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                elif isinstance(step, Truncate):
                    data = json.dumps(completion(step.text, model)).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data) + 100))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True

            def _send(self, code: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "ChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
