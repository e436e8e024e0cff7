"""`chatbot serve`'s JSON API through an ASGI test client (no network)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

from fakegen import FakeGenerator  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from chatbot import Chatbot  # noqa: E402
from chatbot.botdir import load_bot  # noqa: E402
from chatbot.repl.lines import reply_json  # noqa: E402
from chatbot.serve import ServeOptions, create_app  # noqa: E402
from chatbot.serve.batching import MicroBatcher  # noqa: E402
from chatbot.session import MemoryStore, SQLiteStore  # noqa: E402


def fake_bot(store: Any = None, generator: FakeGenerator | None = None) -> Chatbot:
    return Chatbot(load_bot().intents, generator=generator or FakeGenerator(),
                   store=store if store is not None else MemoryStore())


@pytest.fixture
def bot(tmp_path: Path) -> Chatbot:
    return fake_bot(SQLiteStore(tmp_path / "s.sqlite3"))


JSON = {"Content-Type": "application/json"}


def local(app: Any) -> TestClient:
    """A client whose requests name this machine's host, as a local browser's do."""
    return TestClient(app, base_url="http://localhost")


@pytest.fixture
def client(bot: Chatbot) -> Iterator[TestClient]:
    with local(create_app(bot)) as test_client:
        yield test_client


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == response.status_code
    return response.status_code, body["error"]["message"]


def test_a_conversation_over_http_equals_one_through_the_python_api(
    client: TestClient,
) -> None:
    created = client.post("/v1/sessions", json={"id": "user-42"})
    assert (created.status_code, created.json()) == (201, {"id": "user-42", "created": True})
    again = client.post("/v1/sessions", json={"id": "user-42"})
    assert (again.status_code, again.json()) == (200, {"id": "user-42", "created": False})
    direct = fake_bot().session("user-42")
    for text in ["hi", "my name is Ada", "do you like pizza?", "what's my name"]:
        response = client.post("/v1/sessions/user-42/messages", json={"text": text})
        assert response.status_code == 200
        expected = json.loads(reply_json(direct.send(text)))
        assert response.json() == {**expected, "session": "user-42"}
    stored = client.get("/v1/sessions/user-42")
    assert stored.status_code == 200
    assert stored.json() == direct.to_dict()
    fresh = client.post("/v1/sessions")
    assert fresh.status_code == 201 and len(fresh.json()["id"]) == 32


def test_the_trace_comes_on_request(client: TestClient) -> None:
    session_id = client.post("/v1/sessions").json()["id"]
    plain = client.post(f"/v1/sessions/{session_id}/messages", json={"text": "hi"}).json()
    assert "trace" not in plain
    traced = client.post(f"/v1/sessions/{session_id}/messages",
                         json={"text": "do you like pizza?", "trace": True}).json()
    direct = fake_bot().session(session_id)
    direct.send("hi")
    reply = direct.send("do you like pizza?")
    assert traced["trace"]["explain"] == str(reply.trace)
    assert traced["trace"]["rule"] == reply.trace.rule == "neural"
    assert traced["trace"]["neural"]["text"] == reply.trace.neural.text  # type: ignore[union-attr]


def test_reset_starts_over_and_keeps_the_id(client: TestClient) -> None:
    client.post("/v1/sessions", json={"id": "s"})
    client.post("/v1/sessions/s/messages", json={"text": "my name is Ada"})
    assert client.delete("/v1/sessions/s").json() == {"id": "s", "reset": True}
    reply = client.post("/v1/sessions/s/messages", json={"text": "what's my name"}).json()
    assert "Ada" not in reply["text"]
    events = client.get("/v1/sessions/s").json()["events"]
    assert [e["type"] for e in events] == ["user", "slot", "bot", "reset", "user", "bot"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("post", "/v1/sessions/s/messages", b"{bad", 400, "the body: invalid JSON: Expecting "
         "property name enclosed in double quotes (line 1, column 2)"),
        ("post", "/v1/sessions/s/messages", b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}",
         400, "the body: nested more than 64 levels deep (line 1, column 1)"),
        ("post", "/v1/sessions/s/messages", b'{"text": "hi", "turn": ' + b"7" * 4301 + b"}",
         400, "the body: a number of 4301 digits (at most 64) (line 1, column 1)"),
        ("post", "/v1/sessions/s/messages", b"\xff\xfe", 400, None),
        ("post", "/v1/sessions/s/messages", b"[1, 2]", 422, "the body must be a JSON object"),
        ("post", "/v1/sessions/s/messages", b'{"text": 5}', 422, "'text' must be a string"),
        ("post", "/v1/sessions/s/messages", b'{"text": "hi", "trace": "yes"}', 422,
         "'trace' must be true or false"),
        ("post", "/v1/sessions/s/messages", b'{"text": "hi", "turn": -1}', 422,
         "'turn' must be a whole number >= 0"),
        ("post", "/v1/sessions/s/messages", b'{"text": "hi", "turn": true}', 422,
         "'turn' must be a whole number >= 0"),
        ("post", "/v1/sessions/s/messages", b'{"txt": "hi"}', 422,
         "unknown fields ['txt']; allowed: ['text', 'trace', 'turn']"),
        ("post", "/v1/sessions/s/messages", b"", 400, None),
        ("post", "/v1/sessions/nobody/messages", b'{"text": "hi"}', 404, "no session 'nobody'"),
        ("get", "/v1/sessions/nobody", None, 404, "no session 'nobody'"),
        ("delete", "/v1/sessions/nobody", None, 404, "no session 'nobody'"),
        ("post", "/v1/sessions/-bad/messages", b'{"text": "hi"}', 400, None),
        ("get", "/v1/sessions/" + "x" * 129, None, 400, None),
        ("get", "/v1/sessions/a%20b", None, 400, None),
        ("post", "/v1/sessions", b'{"id": 7}', 422, "'id' must be a string"),
        ("post", "/v1/sessions", b'{"id": "../etc"}', 400, None),
        ("get", "/v1/nothing", None, 404, "Not Found"),
        ("put", "/v1/sessions/s", None, 405, "Method Not Allowed"),
    ],
)
def test_bad_requests_get_a_json_4xx(client: TestClient, method: str, path: str,
                                     body: bytes | None, status: int, message: str | None
                                     ) -> None:
    client.post("/v1/sessions", json={"id": "s"})
    headers = {"Content-Type": "application/json"} if body is not None else {}
    response = client.request(method.upper(), path, content=body, headers=headers)
    code, said = error_of(response)
    assert code == status
    if message is not None:
        assert said == message
    assert "Traceback" not in response.text


def test_a_body_over_the_limit_gets_413_and_long_text_is_cut(bot: Chatbot) -> None:
    with local(create_app(bot, ServeOptions(max_body=2048))) as client:
        client.post("/v1/sessions", json={"id": "s"})
        big = json.dumps({"text": "a" * 3000}).encode()
        assert error_of(client.post("/v1/sessions/s/messages", content=big, headers=JSON)) == (
            413, "the body is over 2048 bytes")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"text": "'
            for _ in range(30):
                yield b"b" * 100
            yield b'"}'

        assert error_of(client.post("/v1/sessions/s/messages", content=chunks(), headers=JSON))[0] == 413
        reply = client.post("/v1/sessions/s/messages", json={"text": "abcd" * 480})
        assert reply.status_code == 200
    stored = bot.store.load("s")
    assert stored is not None and [len(e["text"]) for e in stored["events"]
                                   if e["type"] == "user"] == [1000]


def test_a_token_guards_every_route_but_the_health_check_and_the_page(bot: Chatbot) -> None:
    with local(create_app(bot, ServeOptions(token="s3cret"))) as client:
        for method, path in [("POST", "/v1/sessions"), ("GET", "/v1/sessions/x"),
                             ("DELETE", "/v1/sessions/x"), ("POST", "/v1/sessions/x/messages"),
                             ("GET", "/metrics"), ("GET", "/openapi.json")]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                response = client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.headers["www-authenticate"] == "Bearer"
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200
        good = {"Authorization": "Bearer s3cret"}
        session_id = client.post("/v1/sessions", headers=good).json()["id"]
        reply = client.post(f"/v1/sessions/{session_id}/messages", headers=good,
                            json={"text": "hi"})
        assert reply.status_code == 200 and reply.json()["intent"] == "greet"


def test_no_cors_unless_asked(bot: Chatbot) -> None:
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    with local(create_app(bot)) as client:
        response = client.options("/v1/sessions", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-origin" not in client.get(
            "/healthz", headers={"Origin": "https://example.org"}).headers
    with local(create_app(bot, ServeOptions(cors=("https://example.org",)))) as client:
        response = client.options("/v1/sessions", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://example.org"


def test_a_retried_turn_gets_the_stored_answer_not_a_second_one(client: TestClient,
                                                                 bot: Chatbot) -> None:
    client.post("/v1/sessions", json={"id": "s"})
    first = client.post("/v1/sessions/s/messages", json={"text": "hi", "turn": 0}).json()
    again = client.post("/v1/sessions/s/messages", json={"text": "hi", "turn": 0})
    assert again.status_code == 200
    assert again.json() == {"text": first["text"], "source": "intent", "intent": "greet",
                            "confidence": None, "session": "s", "turn": 0, "replayed": True}
    ahead = client.post("/v1/sessions/s/messages", json={"text": "hey", "turn": 5})
    assert error_of(ahead) == (409, "session 's' is at turn 1, not 5")
    stored = bot.store.load("s")
    assert stored is not None and [e["type"] for e in stored["events"]] == ["user", "bot"]


def test_metrics_count_requests_batches_and_sources(client: TestClient) -> None:
    client.post("/v1/sessions", json={"id": "s"})
    client.post("/v1/sessions/s/messages", json={"text": "hi"})
    client.post("/v1/sessions/s/messages", json={"text": "do you like pizza?"})
    client.post("/v1/sessions/s/messages", json={"text": 1})
    text = client.get("/metrics").text
    for line in [
        'chatbot_http_requests_total{method="POST",route="/v1/sessions",status="201"} 1.0',
        'chatbot_http_requests_total{method="POST",route="/v1/sessions/{session_id}/messages",'
        'status="200"} 2.0',
        'chatbot_http_requests_total{method="POST",route="/v1/sessions/{session_id}/messages",'
        'status="422"} 1.0',
        'chatbot_replies_total{source="intent"} 1.0',
        'chatbot_replies_total{source="neural"} 1.0',
        "chatbot_batch_size_count 2.0",
        "chatbot_batch_size_sum 2.0",
    ]:
        assert line in text.splitlines(), line
    assert 'chatbot_http_request_seconds_count{route="/v1/sessions"} 1.0' in text


def test_the_openapi_description_lists_exactly_the_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    described = {(path, method.upper()) for path, item in spec["paths"].items()
                 for method in item if method != "parameters"}
    app = client.app
    served = {(route.path, method) for route in app.routes  # type: ignore[attr-defined]
              if isinstance(route, Route) for method in route.methods or ()
              if method != "HEAD"}
    assert described == served


def test_the_page_is_one_self_contained_html_file(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "<script>" in page.text and "/v1/sessions" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # works offline


def test_concurrent_turns_share_one_decode_and_keep_each_sessions_order() -> None:
    generator = FakeGenerator()
    bot = fake_bot(generator=generator)
    for i in range(16):
        bot.restore({"version": 1, "id": f"s{i}", "events": [], "state": None})
    sizes: list[int] = []

    async def run() -> list[Any]:
        batcher = MicroBatcher(bot, window_s=0.05, on_batch=sizes.append)
        await batcher.start()
        try:
            sends = [batcher.send(f"s{i}", f"i like thing {i}") for i in range(16)]
            sends += [batcher.send("s0", f"and then {k}") for k in range(3)]
            return await asyncio.gather(*sends)
        finally:
            await batcher.stop()

    replies = asyncio.run(run())
    assert len(replies) == 19 and sizes == [19]
    assert generator.respond_calls[:1] == [16]  # one decode for the 16 sessions
    stored = bot.store.load("s0")
    assert stored is not None
    assert [e["text"] for e in stored["events"] if e["type"] == "user"] == [
        "i like thing 0", "and then 0", "and then 1", "and then 2"]


def test_two_workers_over_one_store_answer_one_session_in_turn(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    apps = [create_app(fake_bot(SQLiteStore(path))) for _ in range(2)]
    with local(apps[0]) as a, local(apps[1]) as b:
        a.post("/v1/sessions", json={"id": "s"})
        texts = ["hi", "my name is Ada", "do you like pizza?", "what's my name", "tell me more"]
        for k, text in enumerate(texts):
            worker = (a, b)[k % 2]
            response = worker.post("/v1/sessions/s/messages", json={"text": text, "turn": k})
            assert response.status_code == 200, response.text
        final = b.get("/v1/sessions/s").json()
    direct = fake_bot().session("s")
    for text in texts:
        direct.send(text)
    assert final == direct.to_dict()


def test_health_answers_while_a_batch_decodes(bot: Chatbot) -> None:
    release = threading.Event()
    generator = FakeGenerator()
    respond = generator.respond

    def slow(*args: Any, **kwargs: Any) -> Any:
        assert release.wait(10)
        return respond(*args, **kwargs)

    generator.respond = slow  # type: ignore[method-assign]
    slow_bot = fake_bot(bot.store, generator)
    with local(create_app(slow_bot)) as client:
        client.post("/v1/sessions", json={"id": "s"})
        result: list[Any] = []
        sender = threading.Thread(target=lambda: result.append(
            client.post("/v1/sessions/s/messages", json={"text": "i like pizza"})))
        sender.start()
        try:
            for _ in range(3):
                health = client.get("/healthz").json()
                assert (health["status"], health["bot"]) == ("ok", "chatbot")
            assert result == []  # the turn is still decoding
        finally:
            release.set()
            sender.join(10)
        assert result[0].status_code == 200


def test_chatbot_serve_passes_its_options_to_each_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from chatbot.cli import main
    from chatbot.serve.app import OPTIONS_ENV

    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.delenv(OPTIONS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # not a bot directory: the packaged default bot
    monkeypatch.setenv("CHATBOT_TOKEN", "from-env")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the command sets it if unset
    store = tmp_path / "s.sqlite3"
    assert main(["serve", "--port", "9001", "--workers", "2", "--store", str(store),
                 "--cors", "https://a.example", "--batch-window-ms", "2",
                 "--allowed-host", "bot.example"]) == 0
    [(app, kwargs)] = calls
    assert app == "chatbot.serve.app:create_app_from_env"
    from chatbot.serve.protocol import DeadlineProtocol

    assert kwargs == {"factory": True, "host": "127.0.0.1", "port": 9001, "workers": 2,
                      "log_level": "info", "http": DeadlineProtocol, "timeout_keep_alive": 5}
    import os

    assert json.loads(os.environ[OPTIONS_ENV]) == {
        "bot": None, "store": str(store), "token": "from-env", "window_ms": 2.0,
        "max_batch": 64, "max_body": 16384, "cors": ["https://a.example"], "warm": True,
        "allowed_hosts": ["localhost", "127.0.0.1", "::1", "bot.example"], "body_timeout_s": 10.0}
    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert main(["serve", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert f"chatbot: error: {tmp_path / 'nope'}: no such bot directory" in err
    assert "--workers and --max-batch must be >= 1" in err
    assert len(calls) == 1


def test_a_session_deleted_from_the_store_behind_the_servers_back_is_gone(
    client: TestClient, bot: Chatbot
) -> None:
    client.post("/v1/sessions", json={"id": "s"})
    assert client.post("/v1/sessions/s/messages", json={"text": "hi"}).status_code == 200
    bot.store.delete("s")
    first = client.post("/v1/sessions/s/messages", json={"text": "hello?"})
    assert error_of(first)[0] == 404 and "deleted from the store" in error_of(first)[1]
    assert error_of(client.post("/v1/sessions/s/messages", json={"text": "hello?"})) == (
        404, "no session 's'")
    assert client.post("/v1/sessions", json={"id": "s"}).status_code == 201
    assert client.post("/v1/sessions/s/messages", json={"text": "hi"}).status_code == 200


def test_the_page_is_titled_with_the_bots_name_and_asks_for_no_favicon(tmp_path: Path) -> None:
    bot = fake_bot()
    bot.name = "bike <repairs>"  # type: ignore[misc]
    with local(create_app(bot)) as client:
        page = client.get("/").text
    assert "<title>bike &lt;repairs&gt;</title>" in page
    assert '<h1 id="title">bike &lt;repairs&gt;</h1>' in page
    assert '<link rel="icon" href="data:,">' in page


def test_the_page_and_every_response_carry_browser_protections(client: TestClient) -> None:
    import base64
    import hashlib
    import re

    response = client.get("/")
    policy = response.headers["content-security-policy"]
    script = re.search(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "frame-ancestors 'none'" in policy and policy.startswith("default-src 'none'")
    assert response.headers["x-frame-options"] == "DENY"
    for answered in (response, client.get("/healthz"), client.get("/v1/sessions/nobody")):
        assert answered.headers["x-content-type-options"] == "nosniff"


def test_the_token_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    import uvicorn

    from chatbot.cli import main
    from chatbot.serve.app import OPTIONS_ENV

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    monkeypatch.delenv("CHATBOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "token").write_text("s3cret-from-file\n")
    assert main(["serve", "--token-file", str(tmp_path / "token")]) == 0
    assert json.loads(os.environ[OPTIONS_ENV])["token"] == "s3cret-from-file"
    (tmp_path / "empty").write_text("")
    assert main(["serve", "--token-file", str(tmp_path / "empty")]) == 2


def test_a_method_the_session_route_does_not_take_lists_both_it_takes(client: TestClient) -> None:
    response = client.put("/v1/sessions/s")
    assert error_of(response) == (405, "Method Not Allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "DELETE"}


@pytest.mark.parametrize(("host", "extra", "made_up"), [
    ("127.0.0.1", [], False), ("localhost", [], False), ("::1", [], False),
    ("0.0.0.0", [], True), ("192.168.1.5", [], True), ("0.0.0.0", ["--no-token"], False)])
def test_a_token_is_made_up_when_serving_beyond_loopback(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        host: str, extra: list[str], made_up: bool) -> None:
    import os

    import uvicorn

    from chatbot.cli import main
    from chatbot.serve.app import OPTIONS_ENV

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    monkeypatch.delenv("CHATBOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--host", host, *extra]) == 0
    token = json.loads(os.environ[OPTIONS_ENV])["token"]
    assert (token is not None) == made_up
    if made_up:
        assert len(token) >= 32 and f"Authorization: Bearer {token}" in capsys.readouterr().err


def test_the_description_and_the_server_agree_on_turn_and_id(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    new = spec["components"]["schemas"]["NewSession"]["properties"]["id"]
    assert new["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
    client.post("/v1/sessions", json={"id": "s"})
    first = client.post("/v1/sessions/s/messages", json={"text": "hi", "turn": 0.0})
    assert first.status_code == 200  # 0.0 is an integer to JSON Schema
    assert error_of(client.post("/v1/sessions/s/messages", json={"text": "hi", "turn": 1.5})) \
        == (422, "'turn' must be a whole number >= 0")
