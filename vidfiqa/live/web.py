"""The live page of `vidfiqa watch` and the JSON API behind it, served by the metrics server
(live/metrics.py) beside ``/metrics`` and ``/health``, on 127.0.0.1 only.

Routes (docs/cameras.md documents the API for programs):

* ``/`` and ``/person/<n>``: the page (``live/page/``: plain HTML, CSS and JavaScript shipped in
  the package; no build step, nothing fetched from elsewhere), ``/page.css``, ``/page.js``;
* ``/api/cameras``: each camera's live state (up, analysed frames per second, from the watch's
  counters and /health) joined with what the event store holds of it (events, persons, the last
  event);
* ``/api/events``, ``/api/events/<event_id>``, ``/api/persons``, ``/api/persons/<n>``: the store's
  queries (live/event_queries.py) as JSON; a bad parameter is a 400 with a one-line ``error``;
* ``/images/<path>``: an event's image, by its path relative to the watch output as the API
  gives it, and only from inside ``OUT/events/`` (a path that leaves it - ``..``, an absolute
  path, a link pointing elsewhere, however it is encoded - is refused; folders are never listed).

Only requests whose ``Host`` is this machine's loopback name (``127.0.0.1``, ``localhost``,
``[::1]``, any port) are answered: a web page elsewhere cannot read faces through its own name
resolved to 127.0.0.1 (DNS rebinding).  A reverse proxy in front must therefore send the upstream's
address as ``Host`` (nginx does by default; Caddy: ``header_up Host {upstream_hostport}``).

Only the standard library is imported here.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import VidfiqaError
from .event_queries import MAX_LIMIT, STORE_FILE, EventQueries, QueryError, iso, parse_person

PAGE_DIR = Path(__file__).with_name("page")
#: The page's files: URL path -> (file in PAGE_DIR, content type).
STATIC = {"/page.css": ("page.css", "text/css; charset=utf-8"), "/page.js": ("page.js", "text/javascript; charset=utf-8")}
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
EVENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,200}")
PERSON_PATH = re.compile(r"/person/(\d{1,18})/?")
API_PERSON = re.compile(r"/api/persons/([^/]*)")
API_EVENT = re.compile(r"/api/events/([^/]*)")

#: The query parameters each list of the API takes.
PARAMETERS = {
    "events": ("camera", "since", "until", "person", "limit", "before"),
    "persons": ("camera", "since", "until", "limit", "before", "changed_since"),
    "person": ("since", "until", "limit", "before"),
    "none": (),
}

# The page may run scripts, styles and images of this server only: nothing inline, nothing fetched elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                               "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, value: Any) -> Response:
    return Response(status, "application/json", (json.dumps(value, allow_nan=False) + "\n").encode(), {"Cache-Control": "no-store"})


def error(status: int, message: str) -> Response:
    """An API error: ``{"error": "<one line>"}``."""
    return json_response(status, {"error": " ".join(str(message).split())})


class FrameRates:
    """Analysed frames per second per stream, from the watch's ``vidfiqa_frames_processed_total``
    counter, sampled about once a second (:meth:`sample`, from the watch's loop) over the last
    ``window_s`` seconds."""

    def __init__(self, read: Callable[[str], float], window_s: float = 10.0, every_s: float = 1.0):
        self.read, self.window_s, self.every_s = read, window_s, every_s
        self._samples: dict[str, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()
        self._last = -float("inf")

    def sample(self, streams: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self._last < self.every_s:
            return
        self._last = now
        with self._lock:
            for name in streams:
                samples = self._samples.setdefault(name, deque())
                samples.append((now, float(self.read(name))))
                while len(samples) > 2 and now - samples[1][0] >= self.window_s:
                    samples.popleft()

    def rate(self, stream: str) -> float | None:
        """Frames analysed per second over the window; None until two samples a second apart exist."""
        with self._lock:
            samples = self._samples.get(stream)
            if not samples or len(samples) < 2:
                return None
            (t0, n0), (t1, n1) = samples[0], samples[-1]
        return round(max(n1 - n0, 0.0) / (t1 - t0), 2) if t1 - t0 >= 0.5 else None


class LiveSite:
    """The page, the API and the images of one watch output (``root``).

    ``cameras``: the live state of the watch's cameras, by name (``Watcher.live_cameras``: up,
    analysing, fps ...); ``store``: whether the watch keeps an event store (``--no-store``: the
    lists answer 503).  The store is opened read-only when first asked for (it may not exist yet
    when the server starts) and kept open."""

    def __init__(self, root: str | Path, cameras: Callable[[], dict[str, dict[str, Any]]] | None = None, store: bool = True):
        self.root = Path(root)
        self.events_dir = self.root / "events"
        self.cameras = cameras or (lambda: {})
        self.store = store
        self._queries: EventQueries | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._queries is not None:
                self._queries.close()
                self._queries = None

    # ---------------------------------------------------------------- dispatch
    def handle(self, target: str, host: str | None = None) -> Response | None:
        """The answer to ``GET target`` (the request line's path and query); None: not a route of
        the site (the server answers 404)."""
        parts = urlsplit(target)
        path = parts.path
        if host is not None and not loopback(host):
            return error(403, f"Host {host!r} is not this machine's loopback address: a reverse proxy must send Host: 127.0.0.1 (docs/cameras.md)")
        try:
            if path == "/" or PERSON_PATH.fullmatch(path):
                return self._page(path)
            if path in STATIC:
                name, kind = STATIC[path]
                return Response(200, kind, (PAGE_DIR / name).read_bytes(), {"Cache-Control": "no-cache", **PAGE_HEADERS})
            if path.startswith("/images/"):
                return self._image(path[len("/images/"):])
            if path == "/api" or path.startswith("/api/"):
                return self._api(path, parts.query)
        except QueryError as err:
            return error(400, str(err))
        return None

    def _page(self, path: str) -> Response:
        # Relative links throughout, so that the page works under a reverse proxy's sub-path:
        # <base> is the site's root relative to this page.
        depth = path.count("/") - 1  # folders between the root and this page
        base = "../" * depth if depth else "./"
        html = (PAGE_DIR / "index.html").read_text().replace("{{BASE}}", base)
        return Response(200, "text/html; charset=utf-8", html.encode(), {"Cache-Control": "no-cache", **PAGE_HEADERS})

    # ---------------------------------------------------------------- images
    def _image(self, encoded: str) -> Response:
        """An image under OUT/events by its path relative to OUT (``events/<camera>/<event>/<file>``)."""
        try:
            relative = unquote(encoded, errors="strict")
        except UnicodeDecodeError:
            return error(400, f"image: {encoded!r} is not a path (bad UTF-8 in its encoding)")
        parts = relative.split("/")
        if (not relative or "\x00" in relative or "\\" in relative or relative.startswith("/") or ":" in parts[0]
                or any(p in ("", ".", "..") for p in parts)):
            return error(400, f"image: {relative!r} is not a path inside the events folder (events/<camera>/<event>/<file>)")
        if parts[0] != "events" or len(parts) < 2:
            return error(404, f"image: {relative!r} is not in the events folder")
        if Path(parts[-1]).suffix.lower() not in IMAGE_TYPES:
            return error(404, f"image: {relative!r} is not an image")
        try:
            inside = self.events_dir.resolve(strict=True)
            path = (self.root / relative).resolve(strict=True)
        except (OSError, RuntimeError):  # absent (pruned), or a loop of links
            return error(404, f"image: {relative!r} does not exist (pruned, or never written)")
        if not path.is_relative_to(inside) or not path.is_file():  # a link that points out of the folder; a folder
            return error(404, f"image: {relative!r} is not a file in the events folder")
        try:
            body = path.read_bytes()
        except OSError:
            return error(404, f"image: {relative!r} cannot be read (pruned meanwhile?)")
        # An event's images never change (a pruned one is gone): the browser may keep them.
        return Response(200, IMAGE_TYPES[path.suffix.lower()], body, {"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"})

    # ---------------------------------------------------------------- the API
    def _api(self, path: str, query: str) -> Response:
        if path == "/api/cameras":
            self._parameters(query, "none")
            return json_response(200, {"items": self._cameras(), "now": iso(time.time())})
        if path in ("/api/events", "/api/persons"):
            kind = path.rsplit("/", 1)[1]
            params = self._parameters(query, kind)
            return self._ask(lambda q: self._page_of(q.events(**params) if kind == "events" else q.persons(**params), params))
        match = API_PERSON.fullmatch(path)
        if match:
            params = self._parameters(query, "person")
            number = parse_person(unquote(match.group(1)))
            if number is None:
                raise QueryError("person: a person number is needed (/api/persons/<n>)")

            def person(q: EventQueries) -> Response:
                found = q.person(number)
                if found is None:
                    return error(404, f"person: {number} is not in the store (never seen, or every visit pruned)")
                return json_response(200, {"person": found, **self._listing(q.person_visits(number, **params), params)})
            return self._ask(person)
        match = API_EVENT.fullmatch(path)
        if match:
            self._parameters(query, "none")
            event_id = unquote(match.group(1))
            if not EVENT_ID.fullmatch(event_id):
                return error(400, f"event: {event_id!r} is not an event id")

            def event(q: EventQueries) -> Response:
                found = q.event(event_id)
                return json_response(200, found) if found is not None else error(404, f"event: {event_id} is not in the store (never written, or pruned)")
            return self._ask(event)
        return error(404, f"{path}: no such API; try /api/cameras, /api/events, /api/persons, /api/persons/<n>, /api/events/<id>")

    @staticmethod
    def _parameters(query: str, kind: str) -> dict[str, Any]:
        """The query's parameters, each known to ``kind``'s list and given once; empty ones are absent."""
        known = PARAMETERS[kind]
        try:
            pairs = parse_qsl(query, keep_blank_values=True, errors="strict", max_num_fields=20)
        except (UnicodeDecodeError, ValueError) as err:
            raise QueryError(f"query: cannot be read ({err})") from None
        params: dict[str, Any] = {}
        for name, value in pairs:
            if name not in known:
                raise QueryError(f"{name}: not a parameter here" + (f" (these are: {', '.join(known)})" if known else " (none are taken)"))
            if name in params:
                raise QueryError(f"{name}: given twice")
            if value.strip():
                params[name] = value
        return params

    @staticmethod
    def _listing(items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        """A list and the cursor of its next page (None: this was the last one)."""
        limit = int(params.get("limit", 100))
        return {"items": items, "next": items[-1]["cursor"] if items and len(items) >= limit else None}

    def _page_of(self, items: list[dict[str, Any]], params: dict[str, Any]) -> Response:
        return json_response(200, self._listing(items, params))

    def _open(self) -> EventQueries | None:
        with self._lock:
            if self._queries is None and (self.root / STORE_FILE).is_file():
                self._queries = EventQueries(self.root)
            return self._queries

    def _ask(self, question: Callable[[EventQueries], Response]) -> Response:
        if not self.store:
            return error(503, "the event store is off (vidfiqa watch --no-store): only /api/cameras answers")
        try:
            queries = self._open()
            if queries is None:
                return error(503, f"no event store yet ({STORE_FILE} is created with the watch, or at its first event once there is room)")
            return question(queries)
        except QueryError:
            raise
        except (sqlite3.Error, VidfiqaError) as err:
            return error(503 if isinstance(err, sqlite3.OperationalError) else 500, f"the event store cannot be read: {err}")

    def _cameras(self) -> list[dict[str, Any]]:
        """Every camera of the watch and every camera the store holds events of, by name."""
        live = self.cameras()
        stored: dict[str, dict[str, Any]] = {}
        last: dict[str, dict[str, Any]] = {}
        queries = None
        if self.store:
            try:
                queries = self._open()
                if queries is not None:
                    stored = {c["camera"]: c for c in queries.cameras()}
                    for name in stored:
                        newest = queries.events(camera=name, limit=1)
                        if newest:
                            e = newest[0]
                            last[name] = {k: e[k] for k in ("event_id", "wall_time", "person", "quality", "image")}
            except (sqlite3.Error, VidfiqaError):
                stored, last = {}, {}
        out = []
        for name in sorted(set(live) | set(stored)):
            state = live.get(name)
            held = stored.get(name, {})
            out.append({
                "camera": name,
                "watched": state is not None,  # a camera of this watch (else: only in the store, from an earlier run)
                "up": bool(state and state.get("up")),
                "analysing": bool(state and state.get("analysing")),
                "fps": state.get("fps") if state else None,
                "seconds_since_frame": state.get("seconds_since_frame") if state else None,
                "last_error": state.get("last_error") if state else None,
                "last_error_at": state.get("last_error_at") if state else None,
                "events_emitted": state.get("events_emitted") if state else None,
                "events": held.get("events", 0),
                "persons": held.get("persons", 0),
                "first_event": held.get("first_event"),
                "last_event": held.get("last_event"),
                "last": last.get(name),
            })
        return out


def loopback(host: str) -> bool:
    """Whether a ``Host`` header names this machine's loopback interface (any port)."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in LOOPBACK_HOSTS


__all__ = ["FrameRates", "LiveSite", "Response", "MAX_LIMIT", "loopback"]
