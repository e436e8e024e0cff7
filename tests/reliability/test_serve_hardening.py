"""`chatbot serve` under the failures of issue 24: a poisoned row, a failing
store, cross-origin pages, a foreign Host, a retry with other text, deep JSON."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

from fakegen import FakeGenerator  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from chatbot import Chatbot  # noqa: E402
from chatbot.botdir import load_bot  # noqa: E402
from chatbot.errors import SessionError  # noqa: E402
from chatbot.serve import ServeOptions, create_app  # noqa: E402
from chatbot.session import MemoryStore, SQLiteStore  # noqa: E402

JSON = {"Content-Type": "application/json"}


def make_bot(store: Any) -> Chatbot:
    return Chatbot(load_bot().intents, generator=FakeGenerator(), store=store)


def local(app: Any) -> TestClient:
    return TestClient(app, base_url="http://localhost")


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == response.status_code
    return response.status_code, body["error"]["message"]


def post_raw(app: Any, receive: Any) -> list[dict[str, Any]]:
    """The messages `app` sends for a POST of a message to session 's' whose body
    arrives as `receive` yields it (a client the test client cannot imitate)."""
    import asyncio

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/sessions/s/messages",
             "raw_path": b"/v1/sessions/s/messages", "query_string": b"", "root_path": "",
             "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000),
             "http_version": "1.1", "app": app,
             "headers": [(b"host", b"localhost"), (b"content-type", b"application/json")]}

    async def run() -> None:
        async with app.router.lifespan_context(app):
            await asyncio.wait_for(app(scope, receive, send), 5)

    asyncio.run(run())
    return sent


def poison(path: Path, session_id: str) -> None:
    """Rewrites the session's first stored event as JSON nested 5,000 levels deep."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE events SET event = ? WHERE session_id = ? AND seq = 0",
                   ("[" * 5000 + "]" * 5000, session_id))


def test_a_poisoned_row_fails_its_session_alone_and_the_batcher_lives_on(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with local(create_app(make_bot(SQLiteStore(path)))) as client:
        for name in ("bad", "good"):
            client.post("/v1/sessions", json={"id": name})
            client.post(f"/v1/sessions/{name}/messages", json={"text": "hi"})
    poison(path, "bad")
    with local(create_app(make_bot(SQLiteStore(path)))) as client:  # nothing cached
        status, message = error_of(client.post("/v1/sessions/bad/messages", json={"text": "x"}))
        assert status == 503
        assert message.startswith("the turn was not stored: ")
        assert "nested" in message
        for _ in range(3):
            reply = client.post("/v1/sessions/good/messages", json={"text": "hi"})
            assert reply.status_code == 200 and reply.json()["intent"] == "greet"
        assert error_of(client.get("/v1/sessions/bad"))[0] == 503
        assert client.get("/healthz").json()["status"] == "ok"


class BrokenStore(MemoryStore):
    """A store whose every read fails as a full or vanished disk would."""

    def load_since(self, session_id: str, start: int) -> Any:
        raise OSError(5, "Input/output error")

    def load(self, session_id: str) -> Any:
        raise OSError(5, "Input/output error")


def test_store_errors_are_503_on_every_route_and_healthz_says_so() -> None:
    with local(create_app(make_bot(BrokenStore()))) as client:
        assert error_of(client.post("/v1/sessions", json={"id": "s"}))[0] == 503
        assert error_of(client.post("/v1/sessions/s/messages", json={"text": "hi"}))[0] == 503
        assert error_of(client.delete("/v1/sessions/s"))[0] == 503
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert health.json()["problems"] == [
            "the session store does not answer: OSError(5, 'Input/output error')"]


def test_an_unexpected_error_in_a_batch_fails_that_turn_only(tmp_path: Path) -> None:
    bot = make_bot(SQLiteStore(tmp_path / "s.sqlite3"))
    with local(create_app(bot)) as client:
        app_batcher = client.app.state.batcher  # type: ignore[attr-defined]
        for name in ("a", "b"):
            client.post("/v1/sessions", json={"id": name})

        def failing(items: Any, **kwargs: Any) -> Any:
            if any("explode" in text for _, text in items):
                raise RuntimeError("boom")
            return original(items, **kwargs)

        original = bot.send_batch
        bot.send_batch = failing  # type: ignore[method-assign]
        status, message = error_of(client.post("/v1/sessions/a/messages",
                                               json={"text": "explode"}))
        assert status == 503 and "RuntimeError('boom')" in message
        assert client.post("/v1/sessions/b/messages", json={"text": "hi"}).status_code == 200
        assert app_batcher.alive
        assert [e["type"] for e in bot.store.load("a")["events"]] == []  # type: ignore[index]


def test_a_retry_with_other_text_is_409_and_the_text_is_not_lost_silently() -> None:
    bot = make_bot(MemoryStore())
    with local(create_app(bot)) as client:
        client.post("/v1/sessions", json={"id": "s"})
        client.post("/v1/sessions/s/messages", json={"text": "hi", "turn": 0})
        again = client.post("/v1/sessions/s/messages", json={"text": "hi", "turn": 0})
        assert again.status_code == 200 and again.json()["replayed"] is True
        other = client.post("/v1/sessions/s/messages", json={"text": "my name is Bo", "turn": 0})
        assert error_of(other) == (409, "session 's' is at turn 1, not 0; turn 0 was 'hi', "
                                        "not this text, which was not sent: reload the session")
        stored = bot.store.load("s")
        assert stored is not None and "Bo" not in json.dumps(stored)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_bodies_must_be_json_so_a_no_cors_page_cannot_send_one(content_type: str | None) -> None:
    bot = make_bot(MemoryStore())
    with local(create_app(bot)) as client:
        client.post("/v1/sessions", json={"id": "s"})
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.post("/v1/sessions/s/messages", content=b'{"text": "my name is Mallory"}',
                               headers=headers)
        assert error_of(response) == (
            415, "send the body as JSON, with Content-Type: application/json")
        assert bot.store.load("s")["events"] == []  # type: ignore[index]


def test_another_origin_may_not_change_sessions_but_the_page_and_cors_origins_may() -> None:
    bot = make_bot(MemoryStore())
    options = ServeOptions(cors=("https://friend.example",))
    with local(create_app(bot, options)) as client:
        evil = {"Origin": "https://evil.example", **JSON}
        assert error_of(client.post("/v1/sessions", json={"id": "x"}, headers=evil)) == (
            403, "origin 'https://evil.example' may not change sessions here (see --cors)")
        assert error_of(client.delete("/v1/sessions/x", headers=evil))[0] == 403
        assert bot.store.load("x") is None
        page = {"Origin": "http://localhost", **JSON}
        assert client.post("/v1/sessions", json={"id": "p"}, headers=page).status_code == 201
        friend = {"Origin": "https://friend.example", **JSON}
        assert client.post("/v1/sessions", json={"id": "f"}, headers=friend).status_code == 201
        assert client.get("/v1/sessions/p", headers=evil).status_code == 200  # reads: CORS


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.2", ""])
def test_a_foreign_host_header_is_refused(host: str) -> None:
    with local(create_app(make_bot(MemoryStore()))) as client:
        response = client.get("/healthz", headers={"Host": host})
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith(f"host {host!r} is not allowed")


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    with local(create_app(make_bot(MemoryStore()))) as client:
        assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_allowed_hosts_can_be_widened() -> None:
    options = ServeOptions(allowed_hosts=("bot.example",))
    with local(create_app(make_bot(MemoryStore()), options)) as client:
        assert client.get("/healthz", headers={"Host": "bot.example:80"}).status_code == 200
        assert client.get("/healthz", headers={"Host": "localhost"}).status_code == 400
    with local(create_app(make_bot(MemoryStore()), ServeOptions(allowed_hosts=("*",)))) as c:
        assert c.get("/healthz", headers={"Host": "anything.example"}).status_code == 200


def test_session_error_is_the_type_store_failures_reach_callers_as() -> None:
    from chatbot.errors import StoreUnavailableError

    assert issubclass(StoreUnavailableError, SessionError)


def test_a_body_that_does_not_arrive_in_time_gets_408() -> None:
    import asyncio

    bot = make_bot(MemoryStore())
    app = create_app(bot, ServeOptions(body_timeout_s=0.3))
    bot.restore({"version": 1, "id": "s", "events": [], "state": None})
    messages = [{"type": "http.request", "body": b'{"text": ', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(30)  # a client that stalls mid-body
        return {"type": "http.disconnect"}

    sent = post_raw(app, receive)
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"]) == {"error": {
        "status": 408, "message": "the body did not arrive within 0.3 s"}}


def test_a_connection_stuck_in_its_headers_is_closed_and_others_are_served(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import threading
    import time

    import uvicorn

    from chatbot.serve import protocol

    monkeypatch.setattr(protocol, "HEADER_TIMEOUT_S", 0.5)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(make_bot(MemoryStore())), host="127.0.0.1", port=port,
                            http=protocol.DeadlineProtocol, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        for s in stalled:
            s.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: localhost\r\nContent-Le")
        silent = socket.create_connection(("127.0.0.1", port))
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port)) as ok:
            ok.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert ok.recv(4096).startswith(b"HTTP/1.1 200")
        for s in [*stalled, silent]:
            s.settimeout(3)
            assert s.recv(1) == b""  # closed by the server
            s.close()
        assert 0.4 < time.monotonic() - start < 3
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_client_gone_mid_body_is_a_4xx_not_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    bot = make_bot(MemoryStore())
    app = create_app(bot)
    bot.restore({"version": 1, "id": "s", "events": [], "state": None})
    messages = [{"type": "http.request", "body": b'{"text": ', "more_body": True},
                {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    with caplog.at_level("ERROR", logger="chatbot.serve"):
        sent = post_raw(app, receive)
    assert sent[0]["status"] == 400
    assert "Traceback" not in caplog.text and "unexpected error" not in caplog.text
