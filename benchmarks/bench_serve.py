"""Load test of `chatbot serve`: concurrent clients against sequential requests.

Starts `chatbot serve` on 127.0.0.1 (a free port, a fresh session store), then
  1. concurrent: `--clients` clients, each with a session of its own, send
     `--turns` turns each, as fast as their replies come back;
  2. sequential: the same turns (on a fresh server, so no cache is shared),
     one request at a time;
and checks afterwards that every session in the store holds exactly its turns,
in order, each answered once. With `--kill-worker` (and `--workers 2`) one
worker is killed with SIGKILL a third of the way through the concurrent phase;
clients retry a failed request with the same `turn`, so a turn the dead worker
stored is not answered twice.

    python benchmarks/bench_serve.py                      # 64 x 20 on the default bot
    python benchmarks/bench_serve.py --workers 2 --kill-worker --skip-sequential
    python benchmarks/bench_serve.py --clients 8 --turns 3      # a smoke run

Only ever talks to 127.0.0.1. Prints throughput (replies/s), p50/p95 latency,
the mean batch size (from the server's /metrics; with several workers, from
the worker that answered the scrape) and the concurrent/sequential ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from chatbot.session import SQLiteStore

HERE = Path(__file__).parent


def plans_for(clients: int, turns: int) -> list[list[str]]:
    """Each client's messages: the first `turns` utterances of a conversation of the
    chitchat test split (distinct real chit-chat, so nothing is answered twice
    from a cache), or, for longer plans, the written development contexts."""
    try:
        from chatbot.data import load_corpus, split_conversations

        test = split_conversations(load_corpus("chitchat"), seed=0).test
        long = [c.turns[:turns] for c in test if len(c.turns) >= turns]
    except Exception:  # noqa: BLE001 - the data extra is optional
        long = []
    if len(long) < clients:
        contexts = yaml.safe_load((HERE / "judged" / "dev_contexts.yml").read_text("utf-8"))
        pool = [turn for c in contexts["contexts"] for turn in c["turns"][0::2]]
        long = [[pool[(c * 7 + t) % len(pool)] for t in range(turns)] for c in range(clients)]
    return [list(plan) for plan in long[:clients]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: argparse.Namespace, store: Path, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "chatbot", "serve", *([args.bot] if args.bot else []),
               "--port", str(port), "--store", str(store), "--workers", str(args.workers),
               "--batch-window-ms", str(args.window_ms), "--max-batch", str(args.max_batch),
               "--log-level", "warning"]
    server = subprocess.Popen(command, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            if health.status_code == 200 and health.json().get("warm", True):
                return server
        except httpx.TransportError:
            time.sleep(0.2)
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
    raise SystemExit("the server did not come up (and warm up) in 120 s")


def workers_of(pid: int) -> list[int]:
    """The server's worker processes (children of the uvicorn supervisor)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(c) for c in children]
    return [c for c in found  # uvicorn's workers, not multiprocessing's resource tracker
            if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]


class Connection:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams. httpx spent about
    8 ms of CPU a request here, most of a core with 64 clients, on a 2-core
    machine the server shares; this spends a small fraction of that."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        data = json.dumps(body).encode()
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        try:
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            return status, await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError, AttributeError):
            self.close()
            raise ConnectionError("the connection dropped") from None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def chat(client: Connection, lines: list[str], latencies: list[float],
               counts: dict[str, int]) -> str:
    """One client: a new session, then its turns one after another; returns the id."""
    session_id = (await request(client, "POST", "/v1/sessions", {}, counts))["id"]
    for turn, text in enumerate(lines):
        start = time.perf_counter()
        reply = await request(client, "POST", f"/v1/sessions/{session_id}/messages",
                              {"text": text, "turn": turn}, counts)
        latencies.append(time.perf_counter() - start)
        counts["replayed"] += bool(reply.get("replayed"))
    return str(session_id)


async def request(client: Connection, method: str, path: str, body: dict[str, Any],
                  counts: dict[str, int]) -> dict[str, Any]:
    """A request, retried after a dropped connection or a 5xx (at most 20 times)."""
    for attempt in range(20):
        try:
            status, raw = await client.request(method, path, body)
        except ConnectionError:
            status, raw = 0, b""  # the worker died: try again, as after a 5xx
        if status == 0 or status >= 500:
            counts["retries"] += 1
            await asyncio.sleep(0.05 * (attempt + 1))
            continue
        if status >= 400:
            counts["errors"] += 1
            raise RuntimeError(f"{method} {path}: {status} {raw.decode(errors='replace')}")
        data: dict[str, Any] = json.loads(raw)
        return data
    counts["errors"] += 1
    raise RuntimeError(f"{method} {path}: no answer after 20 attempts")


def batch_stats(port: int) -> tuple[float, float]:
    """(sum, count) of the server's batch-size histogram."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    total = float(re.search(r"^chatbot_batch_size_sum (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    count = float(re.search(r"^chatbot_batch_size_count (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    return total, count


async def phase(port: int, plans: list[list[str]], concurrency: int, server_pid: int,
                kill_after: int | None) -> dict[str, Any]:
    latencies: list[float] = []
    counts = {"retries": 0, "errors": 0, "replayed": 0, "killed": 0}
    semaphore = asyncio.Semaphore(concurrency)

    async def one(lines: list[str]) -> str:
        async with semaphore:
            connection = Connection(port)
            try:
                return await chat(connection, lines, latencies, counts)
            finally:
                connection.close()

    async def killer() -> None:
        while kill_after is not None and len(latencies) < kill_after:
            await asyncio.sleep(0.01)
        workers = workers_of(server_pid)
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            counts["killed"] = workers[0]

    start, start_cpu = time.perf_counter(), time.process_time()
    tasks = [asyncio.create_task(one(lines)) for lines in plans]
    kill = asyncio.create_task(killer()) if kill_after is not None else None
    ids = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - start_cpu
    if kill is not None:
        await kill
    ordered = sorted(latencies)
    return {
        "turns": len(latencies),
        "seconds": round(elapsed, 2),
        "replies_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
        "client_cpu_s": round(client_cpu, 2),
        **counts,
        "ids": ids,
    }


def check_store(store: Path, ids: list[str], plans: list[list[str]]) -> list[str]:
    """Problems: a session whose stored user turns are not its plan, or a turn not
    answered exactly once."""
    problems = []
    db = SQLiteStore(store)
    for session_id, lines in zip(ids, plans, strict=True):
        stored = db.load(session_id)
        events = stored["events"] if stored else []
        said = [e["text"] for e in events if e["type"] == "user"]
        kinds = "".join("u" if e["type"] == "user" else "b" for e in events
                        if e["type"] in ("user", "bot"))
        if said != [" ".join(t.split())[:1000] for t in lines] or kinds != "ub" * len(lines):
            problems.append(f"{session_id}: {len(said)} user turns stored, pattern {kinds[:60]}")
    db.close()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bot", help="bot directory (default: the packaged default bot)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--kill-worker", action="store_true")
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    plans = plans_for(args.clients, args.turns)
    warm = [["hi", "how are you?", "what do you do for fun?"]] * 4
    kill_after = args.clients * args.turns // 3 if args.kill_worker else None
    modes = [("concurrent", args.clients, kill_after)]
    if not args.skip_sequential:
        modes.append(("sequential", 1, None))
    results: dict[str, Any] = {}
    problems = []
    with tempfile.TemporaryDirectory() as folder:
        for name, concurrency, kill in modes:
            # A fresh server for each phase, so neither inherits the other's caches.
            store, port = Path(folder) / f"{name}.sqlite3", free_port()
            server = start_server(args, store, port)
            try:
                # Untimed warm-up: the first turns load the reply index.
                asyncio.run(phase(port, warm, 4, server.pid, None))
                before = batch_stats(port)
                result = asyncio.run(phase(port, plans, concurrency, server.pid, kill))
                after = batch_stats(port)
                count = after[1] - before[1]
                result["mean_batch"] = round((after[0] - before[0]) / count, 2) if count else None
                results[name] = result
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=60)
            problems += [f"{name}: {p}" for p in check_store(store, result.pop("ids"), plans)]
    if "sequential" in results:
        results["ratio"] = round(results["concurrent"]["replies_per_s"]
                                 / results["sequential"]["replies_per_s"], 2)
    results["store_problems"] = problems
    results["setup"] = {"clients": args.clients, "turns": args.turns, "workers": args.workers,
                        "window_ms": args.window_ms, "max_batch": args.max_batch,
                        "kill_worker": args.kill_worker,
                        "cpu_count": os.cpu_count()}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if problems or any(r.get("errors") for r in results.values()
                                if isinstance(r, dict)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
