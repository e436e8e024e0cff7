"""The HTTP API: a bot's sessions as JSON resources, on Starlette.

    POST   /v1/sessions                    {"id"?}              -> 201 {"id", "created"}
    POST   /v1/sessions/{id}/messages      {"text", "trace"?, "turn"?} -> the reply
    GET    /v1/sessions/{id}               -> session.to_dict()
    DELETE /v1/sessions/{id}               -> reset (the id stays)
    GET    /healthz  /metrics  /openapi.json  /  (the chat page)

Every error is JSON, `{"error": {"status", "message"}}`, with a 4xx status for
bad input, 503 when the session store fails, and never a traceback. With a
token, every route but `/healthz` and the page (static, holding no data) needs
`Authorization: Bearer TOKEN`. Requests must name an allowed Host (DNS
rebinding), bodies must be `application/json` (a page on another origin cannot
send that without asking first), and a state-changing request from a browser
must come from the page itself or an allowed `cors` origin. docs/http.md
documents the API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import html
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatbot import jsonio
from chatbot.bot import Chatbot
from chatbot.dialogue import Reply
from chatbot.errors import SessionDeletedError, SessionError, TurnMismatchError
from chatbot.jsonio import JsonError
from chatbot.paths import cache_dir
from chatbot.render import one_line
from chatbot.serve.batching import MicroBatcher, UnknownSessionError
from chatbot.serve.openapi import openapi
from chatbot.session import SESSION_VERSION

log = logging.getLogger("chatbot.serve")
T = TypeVar("T")

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
"""A session id: 1 to 128 characters, letters, digits and `_.:@-`, not starting
with punctuation."""
MAX_BODY = 16 * 1024
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
HEALTH_PROBE_S = 2.0
TOKEN_ENV = "CHATBOT_TOKEN"
OPTIONS_ENV = "CHATBOT_SERVE_OPTIONS"


@dataclass(frozen=True)
class ServeOptions:
    """How `chatbot serve` runs (also passed to each worker process as JSON).

    Attributes:
        bot: the bot directory (None: the packaged default bot).
        store: the SQLite session store (None: the default file).
        token: the bearer token every route but `/healthz` and `/` needs (None: none).
        window_ms: how long the first turn of a batch waits for others.
        max_batch: the largest batch.
        max_body: the largest request body in bytes (larger: 413).
        cors: origins allowed to call the API from a browser (none by default).
        allowed_hosts: the names a request's Host header may give (its port
            aside); `*` allows any. Default: this machine's loopback names.
        body_timeout_s: how long a request's body may take to arrive (longer: 408).
        warm: encode every reply of the model's index for the ranking head at
            start-up, in the background (`/healthz` says `"warm": true` when done):
            faster selected replies for about 100 MB of memory.
    """

    bot: str | None = None
    store: str | None = None
    token: str | None = None
    window_ms: float = 5.0
    max_batch: int = 64
    max_body: int = MAX_BODY
    cors: tuple[str, ...] = field(default=())
    warm: bool = True
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    body_timeout_s: float = 10.0


class ApiError(Exception):
    """An error answered as `{"error": {"status", "message"}}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Metrics:
    """The Prometheus series of one app (its own registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("chatbot_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "chatbot_http_request_seconds", "Time to answer a request", ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry)
        self.batch = Histogram("chatbot_batch_size", "Turns decoded together",
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        self.replies = Counter("chatbot_replies", "Replies by source", ["source"],
                               registry=self.registry)


class MetricsMiddleware:
    """Counts each request by route template, method and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: list[Route]) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = next((r.path for r in self.routes if r.matches(scope)[0] != Match.NONE),
                     "other")
        status = 500
        start = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()


class BrowserGuard:
    """Refuses what a browser could be tricked into sending.

    A Host header not among `allowed_hosts` gets 400 (a DNS-rebinding page
    names its own host), and a POST or DELETE whose Origin is neither the
    server's own nor in `cors` gets 403.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...],
                 cors: tuple[str, ...]) -> None:
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed_hosts = {h.lower().strip("[]") for h in allowed_hosts}
        self.cors = set(cors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not self.any_host and _host_name(host) not in self.allowed_hosts:
            message = (f"host {host!r} is not allowed; serve with --allowed-host "
                       f"{_host_name(host) or 'NAME'} to allow it")
            await _error(400, message)(scope, receive, send)
            return
        origin = headers.get("origin")
        if (scope["method"] in ("POST", "DELETE", "PUT", "PATCH") and origin is not None
                and origin not in self.cors and _origin_host(origin) != host.lower()):
            message = f"origin {origin!r} may not change sessions here (see --cors)"
            await _error(403, message)(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-content-type-options", b"nosniff")]}
            await send(message)

        await self.app(scope, receive, sending)


def _page_policy(page: str) -> str:
    """The chat page's Content-Security-Policy: its own inline script and style
    (by hash) and requests to this server, nothing else; no framing."""
    hashes = {kind: [_sha256_source(body) for body in re.findall(
        rf"<{kind}>(.*?)</{kind}>", page, re.DOTALL)] for kind in ("script", "style")}
    return ("default-src 'none'; "
            f"script-src {' '.join(hashes['script'])}; style-src {' '.join(hashes['style'])}; "
            "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


def _sha256_source(body: str) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


def _host_name(host: str) -> str:
    """The name of a Host header without its port ('[::1]:8000' -> '::1')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _origin_host(origin: str) -> str:
    """'http://127.0.0.1:8000' -> '127.0.0.1:8000'."""
    return origin.lower().partition("://")[2].rstrip("/")


async def _stored(call: Awaitable[T], session_id: str) -> T:
    """The result of a store call, its failure answered 404 or 503 (logged)."""
    try:
        return await call
    except (UnknownSessionError, SessionDeletedError) as exc:
        raise ApiError(404, str(exc)) from None
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - one session's bad row must not give a 500
        log.exception("the session store failed for session %r", session_id)
        raise ApiError(503, f"the session store failed: {exc}") from None


def create_app(bot: Chatbot, options: ServeOptions | None = None) -> Starlette:
    """The ASGI app serving `bot` (its store holds the sessions)."""
    options = options or ServeOptions()
    metrics = Metrics()
    batcher = MicroBatcher(bot, window_s=options.window_ms / 1000, max_batch=options.max_batch,
                           on_batch=metrics.batch.observe)
    page = resources.files("chatbot.serve").joinpath("static/index.html").read_text("utf-8")
    name = html.escape(bot.name)
    page = (page.replace("<title>chatbot</title>", f"<title>{name}</title>", 1)
            .replace('<h1 id="title">chatbot</h1>', f'<h1 id="title">{name}</h1>', 1))
    spec = openapi(bot.name)

    def guarded(handler: Callable[[Request], Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
        async def checked(request: Request) -> Response:
            if options.token is not None:
                given = request.headers.get("authorization", "")
                expected = f"Bearer {options.token}"
                if not hmac.compare_digest(given.encode(), expected.encode()):
                    return _error(401, "a bearer token is needed: Authorization: Bearer TOKEN",
                                  headers={"WWW-Authenticate": "Bearer"})
            return await handler(request)

        return checked

    page_headers = {"Cache-Control": "no-cache", "Content-Security-Policy": _page_policy(page),
                    "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers=page_headers)

    warmed, stop_warming = threading.Event(), threading.Event()

    def warm() -> None:
        try:
            warm_up = getattr(bot.generator, "warm_reply_embeddings", None)
            if warm_up is not None:
                count = warm_up(cache_dir(), stop=stop_warming)
                log.info("encoded %d index replies for the ranking head", count)
        except Exception:  # noqa: BLE001 - a server without the table still answers
            log.exception("warming the reply embeddings failed; replies encode them as needed")
        finally:
            warmed.set()

    async def healthz(request: Request) -> Response:
        problems = [] if batcher.alive else ["the batcher has stopped"]
        try:
            await asyncio.wait_for(asyncio.to_thread(bot.store.load_since, "healthz-probe", 0),
                                   HEALTH_PROBE_S)
        except Exception as exc:  # noqa: BLE001 - any failure of the store is a failed check
            problems.append(f"the session store does not answer: {exc!r}")
        data: dict[str, Any] = {"status": "unavailable" if problems else "ok", "bot": bot.name,
                "warm": warmed.is_set()}
        if problems:
            data["problems"] = problems
        return JSONResponse(data, status_code=503 if problems else 200)

    async def metrics_route(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi_route(request: Request) -> Response:
        return JSONResponse(spec)

    async def create(request: Request) -> Response:
        body = await _json_body(request, options, allow_empty=True)
        _only(body, {"id"})
        wanted = body.get("id")
        if wanted is not None and not isinstance(wanted, str):
            raise ApiError(422, "'id' must be a string")
        session_id = _session_id(wanted) if wanted is not None else uuid.uuid4().hex
        created = await _stored(batcher.call(_create, bot, session_id), session_id)
        return JSONResponse({"id": session_id, "created": created},
                            status_code=201 if created else 200)

    async def message(request: Request) -> Response:
        session_id = _session_id(request.path_params["session_id"])
        body = await _json_body(request, options)
        _only(body, {"text", "trace", "turn"})
        text, trace, turn = body.get("text"), body.get("trace", False), body.get("turn")
        if not isinstance(text, str):
            raise ApiError(422, "'text' must be a string")
        if not isinstance(trace, bool):
            raise ApiError(422, "'trace' must be true or false")
        if type(turn) is float and turn.is_integer():
            turn = int(turn)  # JSON Schema's integer: 2.0 is the integer 2
        if turn is not None and (type(turn) is not int or turn < 0):
            raise ApiError(422, "'turn' must be a whole number >= 0")
        try:
            reply = await batcher.send(session_id, text, turn=turn)
        except (UnknownSessionError, SessionDeletedError) as exc:
            raise ApiError(404, str(exc)) from None
        except TurnMismatchError as exc:
            if exc.actual > exc.expected:  # answered already: a retry gets that answer
                stored = await _stored(batcher.call(bot.store.load, session_id), session_id)
                said, answered = _answer_of(stored, exc.expected)
                if answered is not None and said == text:
                    return JSONResponse(answered)
                if answered is not None:
                    raise ApiError(409, f"{exc}; turn {exc.expected} was {said!r}, not this "
                                        "text, which was not sent: reload the session") from None
            raise ApiError(409, str(exc)) from None
        except SessionError as exc:
            raise ApiError(503, f"the turn was not stored: {exc}") from None
        metrics.replies.labels(reply.source).inc()
        return JSONResponse(_reply_dict(reply, session_id, trace))

    async def get_session(request: Request) -> Response:
        session_id = _session_id(request.path_params["session_id"])
        stored = await _stored(batcher.call(bot.store.load, session_id), session_id)
        if stored is None:
            raise ApiError(404, f"no session {session_id!r}")
        return JSONResponse({**stored, "bot": bot.identity})

    async def reset(request: Request) -> Response:
        session_id = _session_id(request.path_params["session_id"])
        await _stored(batcher.call(lambda: batcher.session(session_id).reset()), session_id)
        return JSONResponse({"id": session_id, "reset": True})

    async def session_resource(request: Request) -> Response:
        return await (reset(request) if request.method == "DELETE" else get_session(request))

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", guarded(metrics_route), methods=["GET"]),
        Route("/openapi.json", guarded(openapi_route), methods=["GET"]),
        Route("/v1/sessions", guarded(create), methods=["POST"]),
        # One route for both methods, so a 405 there lists both in its Allow header.
        Route("/v1/sessions/{session_id}", guarded(session_resource), methods=["GET", "DELETE"]),
        Route("/v1/sessions/{session_id}/messages", guarded(message), methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await batcher.start()
        warming = threading.Thread(target=warm, name="reply-embeddings", daemon=True)
        if options.warm:
            warming.start()
        else:
            warmed.set()
        try:
            yield
        finally:
            stop_warming.set()  # a shutdown mid-table stops between chunks, writing nothing
            if warming.is_alive():
                await asyncio.to_thread(warming.join, 30)
            await batcher.stop()

    middleware = [Middleware(MetricsMiddleware, metrics=metrics, routes=routes),
                  Middleware(BrowserGuard, allowed_hosts=options.allowed_hosts,
                             cors=options.cors)]
    if options.cors:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(options.cors),
                                     allow_methods=["GET", "POST", "DELETE"],
                                     allow_headers=["Authorization", "Content-Type"]))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.batcher, app.state.metrics = batcher, metrics
    return app


def create_app_from_env() -> Starlette:
    """The app a worker process serves: `ServeOptions` from `$CHATBOT_SERVE_OPTIONS`."""
    raw = json.loads(os.environ.get(OPTIONS_ENV, "{}"))
    options = ServeOptions(**{**raw, "cors": tuple(raw.get("cors", ())),
                              "allowed_hosts": tuple(raw.get("allowed_hosts", LOOPBACK_HOSTS))})
    if options.token is None and os.environ.get(TOKEN_ENV):
        options = dataclasses.replace(options, token=os.environ[TOKEN_ENV])
    bot = Chatbot.load(options.bot, store=options.store)
    return create_app(bot, options)


def _create(bot: Chatbot, session_id: str) -> bool:
    if bot.store.load_since(session_id, 0) is not None:
        return False
    bot.restore({"version": SESSION_VERSION, "id": session_id, "events": [], "state": None})
    return True


def _answer_of(stored: dict[str, Any] | None, turn: int
               ) -> tuple[str | None, dict[str, Any] | None]:
    """What the user said at user turn number `turn` (0-based), and the stored
    reply to it as a replayed reply (None, None when there is none)."""
    if stored is None:
        return None, None
    seen, said = -1, None
    for event in stored["events"]:
        if event["type"] == "user":
            seen += 1
            said = event["text"] if seen == turn else said
        elif event["type"] == "bot" and seen == turn:
            return said, {"text": one_line(event["text"]), "source": event["source"],
                          "intent": event["intent"], "confidence": None,
                          "session": stored["id"], "turn": turn, "replayed": True}
    return said, None


def _reply_dict(reply: Reply, session_id: str, trace: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "text": one_line(reply.text),
        "source": reply.source,
        "intent": reply.intent,
        "confidence": round(reply.confidence, 6),
        "session": session_id,
    }
    if trace:
        data["trace"] = {**reply.trace.to_dict(), "explain": str(reply.trace)}
    return data


def _session_id(raw: str) -> str:
    if not SESSION_ID.fullmatch(raw):
        raise ApiError(400, "a session id is 1 to 128 letters, digits or _.:@- "
                            "and starts with a letter or digit")
    return raw


async def _json_body(request: Request, options: ServeOptions, *, allow_empty: bool = False
                     ) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(_read_json_body(request, options.max_body, allow_empty),
                                      options.body_timeout_s)
    except TimeoutError:
        raise ApiError(408, f"the body did not arrive within {options.body_timeout_s:g} s"
                       ) from None


async def _read_json_body(request: Request, limit: int, allow_empty: bool) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not (allow_empty and _no_body(request)):
        raise ApiError(415, "send the body as JSON, with Content-Type: application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is over {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the body is over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # gone mid-body: nothing to answer, nothing to log as a bug
        raise ApiError(400, "the client disconnected before the body was complete") from None
    raw = b"".join(chunks)
    if not raw.strip() and allow_empty:
        return {}
    try:
        body = jsonio.loads(raw)
    except JsonError as exc:
        raise ApiError(400, f"the body: {exc.message} (line {exc.line}, column {exc.col})"
                       ) from None
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object")
    return body


def _no_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") == "0" and (
        "transfer-encoding" not in request.headers)


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise ApiError(422, f"unknown fields {extra}; allowed: {sorted(allowed)}")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status,
                        headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail, headers=dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return _error(500, "internal error (logged on the server)")
