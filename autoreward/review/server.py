"""The review page's web server: `autoreward serve`.

Python's own `http.server` (threads, no framework: a handful of routes, and
one fewer dependency to trust) serving pages rendered from run folders
(`views.py`: design runs; `single_runs.py`: single trainings and previews), videos with byte ranges (a
browser's <video> asks for ranges, and seeks only when it gets 206 answers),
and the preference form, which writes `round_<n>/preference.json` into the run
folder, atomically, for the waiting loop to read (`preferences.py`).

What it guards against: only names it has checked become paths (a run is a
folder directly under the runs folder, a candidate an id like r2c1), so no
request reaches a file outside a run, and every file a worker may have
written (a video, a frame, a single training's or a preview's records) is read through the
reader of worker files, which follows no link; a POST whose Origin is another
site is refused, and so is any request whose Host is not this machine's
loopback name while it listens on loopback (DNS rebinding); pages carry a content
security policy with no scripts at all. What it does not: there is no
login, so listening on another address shares the runs with the network.
"""

from __future__ import annotations

import os
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import jinja2

from autoreward.errors import WorkerFileError
from autoreward.loop.run_store import CANDIDATE_ID, RunStore
from autoreward.records import Preference, now_iso
from autoreward.resources import TEMPLATES_DIR
from autoreward.review.single_runs import single_run_video, single_run_view
from autoreward.review.views import candidate_frames, candidate_video, run_folder, run_view, runs_index
from autoreward.sandbox import worker_files

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; media-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MAX_FORM_BYTES = 64 * 1024
CHUNK = 256 * 1024


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,  # reward code and LLM text are untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class ReviewServer:
    """Serves the runs under `runs_dir` on `host:port` (port 0: any free one; `url` says which)."""

    def __init__(self, runs_dir: Path, host: str = "127.0.0.1", port: int = 8765):
        self.runs_dir = Path(runs_dir)
        self.environment = templates()
        self.loopback = host in ("127.0.0.1", "localhost", "::1")
        handler = type("Handler", (_Handler,), {"site": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> "ReviewServer":
        """Serve from a background thread (tests, or a process that does other work)."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def render(self, template: str, **variables) -> bytes:
        return self.environment.get_template(template).render(**variables).encode()


class _Handler(BaseHTTPRequestHandler):
    site: ReviewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    # --- routes ----------------------------------------------------------------

    def do_GET(self) -> None:
        self._guarded(self._route, False)

    def do_HEAD(self) -> None:
        self._guarded(self._route, True)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _guarded(self, handle, *arguments) -> None:
        # A run folder being written while it is read (or a bug) answers 500 with the reason, not a dropped line.
        try:
            handle(*arguments)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as error:  # noqa: BLE001
            self.close_connection = True
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")

    def _route(self, head: bool) -> None:
        if not self._host_allowed():
            return
        parts = self._parts()
        if parts is None:
            return
        if parts == []:
            rows = runs_index(self.site.runs_dir)
            return self._page(self.site.render("review_runs.html.j2", **rows, runs_dir=str(self.site.runs_dir)), head)
        if len(parts) >= 2 and parts[0] == "runs":
            run = run_folder(self.site.runs_dir, parts[1])
            if run is None:
                return self._error(HTTPStatus.NOT_FOUND, f"no run called {parts[1]!r} under {self.site.runs_dir}")
            if not (run / "index.sqlite").exists():  # not a design run: a single training or a preview?
                return self._single_run(run, parts, head)
            if len(parts) == 2:
                if not self.path.split("?")[0].endswith("/"):
                    return self._redirect(f"/runs/{run.name}/")
                return self._page(self.site.render("review_run.html.j2", **run_view(run)), head)
            if len(parts) == 4 and parts[2] == "video" and CANDIDATE_ID.match(parts[3]):
                video = candidate_video(run, parts[3])
                if video is None:
                    return self._error(HTTPStatus.NOT_FOUND, f"candidate {parts[3]} of {run.name} has no video")
                return self._file(run, video, "video/mp4", head)
            if len(parts) == 5 and parts[2] == "frame" and CANDIDATE_ID.match(parts[3]) and parts[4].isdigit():
                frames = candidate_frames(run, parts[3])
                if int(parts[4]) >= len(frames):
                    return self._error(HTTPStatus.NOT_FOUND, f"candidate {parts[3]} of {run.name} has no such frame")
                return self._file(run, frames[int(parts[4])], "image/png", head)
        self._error(HTTPStatus.NOT_FOUND, "no such page")

    def _single_run(self, run: Path, parts: list[str], head: bool) -> None:
        """The page of a single training or a preview, /runs/<run>/, and its video, /runs/<run>/video."""
        try:
            if len(parts) == 2:
                if not self.path.split("?")[0].endswith("/"):
                    return self._redirect(f"/runs/{run.name}/")
                view = single_run_view(run)
                return self._page(self.site.render(f"review_{view['kind']}.html.j2", **view), head)
            if len(parts) == 3 and parts[2] == "video":
                video = single_run_video(run)
                if video is None:
                    return self._error(HTTPStatus.NOT_FOUND, f"{run.name} has no video")
                return self._file(run, video, "video/mp4", head)
        except (WorkerFileError, OSError) as error:
            why = str(error) if isinstance(error, WorkerFileError) else f"{run.name}: {error.strerror or error}"
            return self._error(HTTPStatus.NOT_FOUND, f"not a run this page can show: {why}")
        self._error(HTTPStatus.NOT_FOUND, "no such page")

    def _post(self) -> None:
        if not self._host_allowed():
            return
        origin = self.headers.get("Origin")
        if origin not in (None, "null") and urlsplit(origin).netloc != self.headers.get("Host"):
            return self._error(HTTPStatus.FORBIDDEN, f"a form from {origin} may not answer here")
        parts = self._parts()
        if parts is None:
            return
        if len(parts) != 3 or parts[0] != "runs" or parts[2] != "preference":
            return self._error(HTTPStatus.NOT_FOUND, "no such form")
        run = run_folder(self.site.runs_dir, parts[1])
        if run is None:
            return self._error(HTTPStatus.NOT_FOUND, f"no run called {parts[1]!r}")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM_BYTES:
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the form is too large")
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
        problem, round_number = _save_preference(RunStore.open(run), form)
        if problem is not None:
            return self._error(HTTPStatus.BAD_REQUEST, problem)
        self._redirect(f"/runs/{run.name}/#round-{round_number}")

    # --- answers -------------------------------------------------------------

    def _host_allowed(self) -> bool:
        given = self.headers.get("Host") or ""
        host = given.split("]")[0] + "]" if given.startswith("[") else given.rsplit(":", 1)[0]
        if self.site.loopback and host not in LOOPBACK_NAMES:
            self._error(HTTPStatus.FORBIDDEN, f"this page answers only to {', '.join(LOOPBACK_NAMES)}, not {host!r}")
            return False
        return True

    def _parts(self) -> list[str] | None:
        path = urlsplit(self.path).path
        parts = [unquote(p) for p in path.split("/") if p]
        if any(p in (".", "..") or "/" in p or "\\" in p or "\0" in p for p in parts):
            self._error(HTTPStatus.NOT_FOUND, "no such page")
            return None
        return parts

    def _headers(self, status: HTTPStatus, kind: str, length: int, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Security-Policy", SECURITY_POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def _page(self, body: bytes, head: bool = False) -> None:
        self._headers(HTTPStatus.OK, "text/html; charset=utf-8", len(body))
        if not head:
            self.wfile.write(body)

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = self.site.render("review_error.html.j2", status=int(status), phrase=status.phrase, message=message)
        self._headers(status, "text/html; charset=utf-8", len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self._headers(HTTPStatus.SEE_OTHER, "text/plain", 0, {"Location": location})

    def _file(self, run: Path, path: Path, kind: str, head: bool) -> None:
        """Serve a file a worker wrote (a video, a frame) through the reader of worker files: from the run
        folder down, no link is followed, and only a regular file is served."""
        try:
            stream = worker_files.open_file(run, path.relative_to(run))
        except (WorkerFileError, OSError, ValueError):
            return self._error(HTTPStatus.NOT_FOUND, f"{path.name} is not a file this page serves")
        with stream:
            self._stream(stream, kind, head)

    def _stream(self, stream, kind: str, head: bool) -> None:
        size = os.fstat(stream.fileno()).st_size
        wanted = byte_range(self.headers.get("Range"), size)
        if wanted == "unsatisfiable":
            return self._headers(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, kind, 0, {"Content-Range": f"bytes */{size}"}
            )
        start, end = wanted if wanted else (0, size - 1)
        extra = {"Accept-Ranges": "bytes"}
        if wanted:
            extra["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._headers(HTTPStatus.PARTIAL_CONTENT if wanted else HTTPStatus.OK, kind, end - start + 1, extra)
        if head:
            return
        stream.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = stream.read(min(CHUNK, left))
            if not chunk:
                break
            self.wfile.write(chunk)
            left -= len(chunk)


def byte_range(header: str | None, size: int):
    """The (first, last) byte a Range header asks for; None for the whole file; "unsatisfiable" when outside it.

    One range only (what media elements ask for); several ranges get the whole file.
    """
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - count), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, end


def _save_preference(store: RunStore, form: dict[str, str]) -> tuple[str | None, int | None]:
    """Turn the page's form into the round's preference file. Returns (why not, round)."""
    try:
        round_number = int(form.get("round", ""))
    except ValueError:
        return "the form names no round", None
    request = store.load_preference_request(round_number)
    if request is None:
        return f"round {round_number} is not waiting for a preference", round_number
    if store.load_round(round_number) is not None or store.preference_path(round_number).exists():
        return f"round {round_number} already has its preference", round_number
    best = form.get("best", "")
    if not best:
        return "pick the best candidate", round_number
    shown = list(request.candidate_ids)
    pairs = []
    for key, value in form.items():
        match = re.fullmatch(r"pair__(\w+)__(\w+)", key)
        if match and value in match.groups():
            pairs.append((value, match.group(2) if value == match.group(1) else match.group(1)))
    preference = Preference(
        round=round_number,
        best_id=best,
        worst_id=form.get("worst") or None,
        pairs=tuple(pairs),
        comment=form.get("comment", "").strip()[:4000],
        source="human",
        candidate_ids=tuple(shown),
        at=now_iso(),
    )
    problem = preference.problem(shown)
    if problem is not None:
        return f"this preference cannot be used: {problem}", round_number
    store.save_preference(preference)
    store.log_event("preference given", round=round_number, best=preference.best_id, on="page")
    return None, round_number
