"""Chat streaming: the time to first token the platform adds, tokens/s, and idle sockets held.

Run from the repository root::

    .venv/bin/python -m bench.chat                         # streams 1,50,200; 50 tokens
    .venv/bin/python -m bench.chat --streams 1,50,200 --tokens 50 --idle 5000 --backend sqlite

Three processes take part: a zero-delay fake OpenAI server (``bench.fakes``, its own
process), ``agentplatform serve`` pointed at it through ``OPENAI_BASE_URL`` (a fresh
database, migrated), and this load generator. On a small machine all three share the CPUs.

1. **Time to first token (TTFT) the platform adds.** For each number of concurrent streams,
   each stream is a closed loop of chats, each answered with ``--tokens`` content chunks:
   ``direct`` calls the fake with the official ``openai`` SDK (one shared ``AsyncOpenAI``
   client; TTFT = request → first content chunk); ``websocket`` sends a ``chat`` frame on an
   already open, authenticated ``/ws`` socket (TTFT = send → first ``delta`` frame); ``sse``
   posts ``/api/agents/{id}/chat`` (TTFT = request → first ``delta`` event). Up to 50
   streams do one uncounted warm-up chat each, then every stream runs enough rounds for
   ``--samples`` samples per cell. The added TTFT is the platform's percentile minus the
   direct one at the same concurrency.
2. **Tokens/s**: content chunks (``delta``s) received per second over all streams of a cell,
   wall time of the whole timed phase, and the ratio platform / direct.
3. **Idle WebSockets**: on a fresh server process, ``--idle`` sockets (spread over a few
   guests) are opened and each waits for its ``welcome``; the server's ``VmRSS`` is read
   before and after (after a warm-up of 100 sockets opened and closed). This runs twice, each
   on a fresh server: with permessage-deflate offered (the client's default, as in browsers)
   and without. The soft ``RLIMIT_NOFILE`` is raised to the hard limit first, in this
   process and (inherited) in the server.

CPU seconds of the server, the fake, this process and the whole machine are sampled around
every timed phase; "rest of machine" is everything else (a database server, other users).
The report (Markdown) goes to stdout, progress to stderr; servers are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import resource
import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

import httpx
import openai
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from bench.common import (
    Backend,
    Server,
    background_load,
    bearer,
    fresh_database,
    http_client,
    install_sigterm_handler,
    log,
    machine_cpu_seconds,
    machine_facts,
    markdown_table,
    migrate,
    parse_int_list,
    percentile,
    process_cpu_seconds,
    running_server,
)
from bench.fakes import FakeProcess, fake_openai_process

API_KEY = "bench-key"
MODEL = "gpt-4o-mini"
PROMPT = "Say something."
CHAT_GUESTS = 8  # chats are spread over this many users (one agent each)
IDLE_GUESTS = 10
HANDSHAKE_CONCURRENCY = 100  # idle sockets being opened at once
IDLE_WARMUP_SOCKETS = 100
SETTLE_SECONDS = 1.0
WARMUP_STREAMS = 50  # enough to fill connection pools and lazy imports; more only costs time
CHAT_TIMEOUT = 60.0
TRANSPORTS = ("direct", "websocket", "sse")

GOAL_STREAMS = 50
GOAL_ADDED_P50_MS = 5.0
GOAL_ADDED_P99_MS = 25.0
GOAL_THROUGHPUT_RATIO = 0.70
GOAL_IDLE_SOCKETS = 5_000
GOAL_KB_PER_SOCKET = 50.0

Chat = Callable[[], Awaitable[tuple[float, int]]]  # one chat -> (seconds to first token, tokens)
CLIENT_ERRORS = (OSError, TimeoutError, httpx.HTTPError, openai.OpenAIError, WebSocketException)


class ChatFailed(Exception):
    """A chat ended without a complete, successful reply."""


# --------------------------------------------------------------------------- one chat


async def direct_chat(client: openai.AsyncOpenAI) -> tuple[float, int]:
    started = perf_counter()
    first: float | None = None
    tokens = 0
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first = perf_counter() - started if first is None else first
                tokens += 1
    finally:
        await stream.close()
    if first is None:
        raise ChatFailed("the direct stream had no content")
    return first, tokens


async def ws_chat(ws: ClientConnection, agent_id: str, msg_ids: Iterator[int]) -> tuple[float, int]:
    frame = {
        "type": "chat",
        "agent_id": agent_id,
        "content": PROMPT,
        "client_msg_id": f"b{next(msg_ids)}",
    }
    started = perf_counter()
    await ws.send(json.dumps(frame))
    first: float | None = None
    tokens = 0
    while True:
        event = json.loads(await ws.recv())
        kind = event["type"]
        if kind == "delta":
            first = perf_counter() - started if first is None else first
            tokens += 1
        elif kind == "done" and event.get("status") == "completed" and first is not None:
            return first, tokens
        elif kind in ("done", "error"):
            raise ChatFailed(f"websocket chat ended with {json.dumps(event)[:300]}")


async def sse_chat(http: httpx.AsyncClient, agent_id: str, token: str) -> tuple[float, int]:
    started = perf_counter()
    first: float | None = None
    tokens = 0
    body = {"content": PROMPT}
    path = f"/api/agents/{agent_id}/chat"
    async with http.stream("POST", path, json=body, headers=bearer(token)) as response:
        if response.status_code != 200:
            await response.aread()
            raise ChatFailed(f"HTTP {response.status_code}: {response.text[:300]}")
        async for line in response.aiter_lines():
            if line == "event: delta":
                first = perf_counter() - started if first is None else first
                tokens += 1
            elif line == "event: done" and first is not None:
                return first, tokens
            elif line in ("event: done", "event: error"):
                raise ChatFailed(f"the SSE chat ended with {line!r}")
    raise ChatFailed("the SSE stream ended without a done event")


# --------------------------------------------------------------------------- a cell


@dataclass
class Cell:
    """One transport at one concurrency: TTFT samples, tokens, and CPU of every process."""

    transport: str
    streams: int
    ttfts: list[float] = field(default_factory=list)
    tokens: int = 0
    errors: int = 0
    first_error: str | None = None
    elapsed: float = float("nan")
    cpu: dict[str, float] = field(default_factory=dict)  # seconds: server, fake, client, all

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.elapsed if self.elapsed > 0 else float("nan")

    def p_ms(self, q: float) -> float:
        return percentile(self.ttfts, q) * 1000


@dataclass(frozen=True)
class Processes:
    """The pids whose CPU time a cell samples."""

    server: int
    fake: int

    def cpu(self) -> dict[str, float]:
        return {
            "server": process_cpu_seconds(self.server),
            "fake": process_cpu_seconds(self.fake),
            "client": time.process_time(),
            "all": machine_cpu_seconds(),
        }


async def run_cell(
    transport: str, chats: Sequence[Chat], rounds: int, processes: Processes
) -> Cell:
    """The first ``WARMUP_STREAMS`` of ``chats`` (one per stream) chat once uncounted, then
    every stream runs ``rounds`` timed chats."""
    cell = Cell(transport=transport, streams=len(chats))

    async def loop(chat: Chat, count: int, record: bool) -> None:
        for _ in range(count):
            try:
                async with asyncio.timeout(CHAT_TIMEOUT):
                    ttft, tokens = await chat()
            except (ChatFailed, *CLIENT_ERRORS) as exc:
                cell.errors += 1
                cell.first_error = cell.first_error or f"{type(exc).__name__}: {exc}"
                continue
            if record:
                cell.ttfts.append(ttft)
                cell.tokens += tokens

    async with asyncio.TaskGroup() as group:
        for chat in chats[:WARMUP_STREAMS]:
            group.create_task(loop(chat, 1, record=False))
    if cell.errors:
        log(f"  {transport} x{len(chats)}: {cell.errors} warm-up failure(s): {cell.first_error}")
    cell.errors, cell.first_error = 0, None
    before = processes.cpu()
    started = perf_counter()
    async with asyncio.TaskGroup() as group:
        for chat in chats:
            group.create_task(loop(chat, rounds, record=True))
    cell.elapsed = perf_counter() - started
    after = processes.cpu()
    cell.cpu = {name: after[name] - before[name] for name in before}
    return cell


# --------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class Guest:
    token: str
    agent_id: str


async def make_guests(base_url: str, count: int) -> list[Guest]:
    """``count`` guests, each with one agent on the fake's model."""
    guests = []
    async with http_client(base_url, 1) as http:  # no cookie jar: only bearer tokens count
        for _ in range(count):
            response = await http.post("/api/auth/guest")
            response.raise_for_status()
            token = response.json()["token"]
            body = {"name": "Bench agent", "model": f"openai:{MODEL}"}
            response = await http.post("/api/agents", json=body, headers=bearer(token))
            response.raise_for_status()
            guests.append(Guest(token=token, agent_id=response.json()["id"]))
    return guests


def ws_url(server: Server) -> str:
    return server.base_url.replace("http://", "ws://", 1) + "/ws"


async def open_ws(
    server: Server, token: str, compression: str | None = "deflate"
) -> ClientConnection:
    """An authenticated socket whose ``welcome`` has been read.

    ``compression="deflate"`` (the client's default) offers permessage-deflate, as browsers do.
    """
    ws = await connect(
        ws_url(server),
        additional_headers=bearer(token),
        ping_interval=None,
        open_timeout=60,
        compression=compression,
    )
    welcome = json.loads(await ws.recv())
    if welcome.get("type") != "welcome":
        await ws.close()
        raise ChatFailed(f"expected a welcome frame, got {json.dumps(welcome)[:200]}")
    return ws


async def measure_streams(
    server: Server,
    fake: FakeProcess,
    guests: Sequence[Guest],
    streams: int,
    samples: int,
) -> list[Cell]:
    """The three transports at one concurrency."""
    rounds = max(1, math.ceil(samples / streams))
    processes = Processes(server=server.pid, fake=fake.pid)
    users = [guests[i % len(guests)] for i in range(streams)]
    cells = []

    direct = openai.AsyncOpenAI(api_key=API_KEY, base_url=fake.url, max_retries=0)
    try:
        chats: list[Chat] = [lambda: direct_chat(direct) for _ in users]
        cells.append(await run_cell("direct", chats, rounds, processes))
    finally:
        await direct.close()

    msg_ids = itertools.count()
    sockets = await asyncio.gather(*(open_ws(server, user.token) for user in users))
    try:
        chats = [
            _bind_ws(ws, user.agent_id, msg_ids) for ws, user in zip(sockets, users, strict=True)
        ]
        cells.append(await run_cell("websocket", chats, rounds, processes))
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))

    async with http_client(server.base_url, streams) as http:
        chats = [_bind_sse(http, user) for user in users]
        cells.append(await run_cell("sse", chats, rounds, processes))
    return cells


def _bind_ws(ws: ClientConnection, agent_id: str, msg_ids: Iterator[int]) -> Chat:
    return lambda: ws_chat(ws, agent_id, msg_ids)


def _bind_sse(http: httpx.AsyncClient, user: Guest) -> Chat:
    return lambda: sse_chat(http, user.agent_id, user.token)


# --------------------------------------------------------------------------- idle sockets


@dataclass
class IdleResult:
    compression: str | None
    wanted: int
    held: int = 0
    failed: int = 0
    first_error: str | None = None
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    rss_closed_kb: int = 0
    open_seconds: float = float("nan")

    @property
    def kb_per_socket(self) -> float:
        return (self.rss_after_kb - self.rss_before_kb) / self.held if self.held else float("nan")


def rss_kb(pid: int) -> int:
    """``VmRSS`` of ``pid`` in KiB, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def _open_many(
    server: Server, tokens: Sequence[str], count: int, result: IdleResult
) -> list[ClientConnection]:
    """``count`` sockets, ``HANDSHAKE_CONCURRENCY`` handshakes at a time; failures counted."""
    gate = asyncio.Semaphore(HANDSHAKE_CONCURRENCY)
    sockets: list[ClientConnection] = []

    async def open_one(i: int) -> None:
        async with gate:
            try:
                token = tokens[i % len(tokens)]
                sockets.append(await open_ws(server, token, result.compression))
            except (ChatFailed, *CLIENT_ERRORS) as exc:
                result.failed += 1
                result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"

    await asyncio.gather(*(open_one(i) for i in range(count)))
    return sockets


async def _close_all(sockets: Sequence[ClientConnection]) -> None:
    gate = asyncio.Semaphore(HANDSHAKE_CONCURRENCY)

    async def close(ws: ClientConnection) -> None:
        async with gate:
            await ws.close()

    await asyncio.gather(*(close(ws) for ws in sockets))


async def hold_idle(
    server: Server, guests: Sequence[Guest], count: int, compression: str | None
) -> IdleResult:
    """Open ``count`` sockets, read the server's RSS before and after, then close them."""
    result = IdleResult(compression=compression, wanted=count)
    tokens = [guest.token for guest in guests]
    warm = await _open_many(server, tokens, IDLE_WARMUP_SOCKETS, IdleResult(compression, 0))
    await _close_all(warm)
    await asyncio.sleep(SETTLE_SECONDS)
    result.rss_before_kb = rss_kb(server.pid)
    started = perf_counter()
    sockets = await _open_many(server, tokens, count, result)
    result.open_seconds = perf_counter() - started
    result.held = len(sockets)
    try:
        await asyncio.sleep(SETTLE_SECONDS)
        result.rss_after_kb = rss_kb(server.pid)
    finally:
        await _close_all(sockets)
    await asyncio.sleep(SETTLE_SECONDS)
    result.rss_closed_kb = rss_kb(server.pid)
    return result


def raise_open_files_limit() -> tuple[int, int]:
    """Soft ``RLIMIT_NOFILE`` up to the hard limit (children inherit it); returns both."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --------------------------------------------------------------------------- report


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def ttft_table(cells: Sequence[Cell]) -> str:
    rows: list[list[object]] = []
    for streams in sorted({c.streams for c in cells}):
        by = {c.transport: c for c in cells if c.streams == streams}
        direct = by["direct"]
        for cell in (by[t] for t in TRANSPORTS):
            platform = cell.transport != "direct"
            added50 = _ms(cell.p_ms(50) - direct.p_ms(50)) if platform else "-"
            added99 = _ms(cell.p_ms(99) - direct.p_ms(99)) if platform else "-"
            rows.append(
                [
                    streams,
                    cell.transport,
                    len(cell.ttfts),
                    cell.errors,
                    _ms(cell.p_ms(50)),
                    _ms(cell.p_ms(99)),
                    added50,
                    added99,
                ]
            )
    headers = ("streams", "path", "samples", "errors", "TTFT p50 ms", "TTFT p99 ms")
    return markdown_table((*headers, "added p50 ms", "added p99 ms"), rows)


def throughput_table(cells: Sequence[Cell]) -> str:
    rows: list[list[object]] = []
    for streams in sorted({c.streams for c in cells}):
        by = {c.transport: c for c in cells if c.streams == streams}
        direct = by["direct"].tokens_per_second
        rows.append(
            [
                streams,
                f"{direct:,.0f}",
                f"{by['websocket'].tokens_per_second:,.0f}",
                f"{by['websocket'].tokens_per_second / direct:.0%}",
                f"{by['sse'].tokens_per_second:,.0f}",
                f"{by['sse'].tokens_per_second / direct:.0%}",
            ]
        )
    headers = ("streams", "direct tok/s", "websocket tok/s", "ws / direct", "sse tok/s")
    return markdown_table((*headers, "sse / direct"), rows)


def cpu_table(cells: Sequence[Cell], cpus: int) -> str:
    rows: list[list[object]] = []
    for cell in cells:
        chats = len(cell.ttfts) or 1
        per_chat = {name: seconds * 1000 / chats for name, seconds in cell.cpu.items()}
        rows.append(
            [
                cell.streams,
                cell.transport,
                f"{len(cell.ttfts) / cell.elapsed:,.0f}",
                _ms(per_chat["server"]),
                _ms(per_chat["fake"]),
                _ms(per_chat["client"]),
                _ms(per_chat["all"] - per_chat["server"] - per_chat["fake"] - per_chat["client"]),
                f"{cell.cpu['all'] / (cell.elapsed * cpus):.0%}",
            ]
        )
    headers = ("streams", "path", "chats/s", "server CPU ms/chat", "fake CPU ms/chat")
    more = ("client CPU ms/chat", "rest of machine CPU ms/chat", "CPUs busy")
    return markdown_table((*headers, *more), rows)


def _compression_label(compression: str | None) -> str:
    return "permessage-deflate" if compression == "deflate" else "none"


def idle_table(idles: Sequence[IdleResult]) -> str:
    rows = [
        [
            _compression_label(idle.compression),
            idle.wanted,
            idle.held,
            idle.failed,
            f"{idle.open_seconds:.1f}",
            f"{idle.rss_before_kb / 1024:.1f}",
            f"{idle.rss_after_kb / 1024:.1f}",
            f"{(idle.rss_after_kb - idle.rss_before_kb) / 1024:.1f}",
            f"{idle.kb_per_socket:.1f}",
            f"{idle.rss_closed_kb / 1024:.1f}",
        ]
        for idle in idles
    ]
    headers = ("compression", "sockets asked", "held", "failed", "open s", "RSS before MiB")
    more = ("RSS held MiB", "delta MiB", "KiB/socket", "RSS after close MiB")
    return markdown_table((*headers, *more), rows)


def goals_table(cells: Sequence[Cell], idles: Sequence[IdleResult]) -> str:
    rows: list[list[object]] = []
    by = {(c.streams, c.transport): c for c in cells}
    direct = by.get((GOAL_STREAMS, "direct"))
    for transport in ("websocket", "sse"):
        cell = by.get((GOAL_STREAMS, transport))
        if direct is None or cell is None:
            continue
        added50 = cell.p_ms(50) - direct.p_ms(50)
        added99 = cell.p_ms(99) - direct.p_ms(99)
        where = f"{transport}, {GOAL_STREAMS} streams"
        rows.append(
            [
                f"added TTFT p50 ({where})",
                f"< {GOAL_ADDED_P50_MS:g} ms",
                f"{added50:.2f} ms",
                _met(added50 < GOAL_ADDED_P50_MS),
            ]
        )
        rows.append(
            [
                f"added TTFT p99 ({where})",
                f"< {GOAL_ADDED_P99_MS:g} ms",
                f"{added99:.2f} ms",
                _met(added99 < GOAL_ADDED_P99_MS),
            ]
        )
    for (streams, transport), cell in sorted(by.items()):
        if transport == "direct":
            continue
        ratio = cell.tokens_per_second / by[(streams, "direct")].tokens_per_second
        rows.append(
            [
                f"tokens/s vs direct ({transport}, {streams} streams)",
                f">= {GOAL_THROUGHPUT_RATIO:.0%}",
                f"{ratio:.0%}",
                _met(ratio >= GOAL_THROUGHPUT_RATIO),
            ]
        )
    for idle in idles:
        label = _compression_label(idle.compression)
        rows.append(
            [
                f"idle sockets held ({label})",
                f">= {GOAL_IDLE_SOCKETS:,}",
                f"{idle.held:,}",
                _met(idle.held >= GOAL_IDLE_SOCKETS),
            ]
        )
        rows.append(
            [
                f"memory per idle socket ({label})",
                f"< {GOAL_KB_PER_SOCKET:g} KB",
                f"{idle.kb_per_socket * 1.024:.1f} KB",
                _met(idle.kb_per_socket * 1.024 < GOAL_KB_PER_SOCKET),
            ]
        )
    return markdown_table(("goal", "target", "measured", "result"), rows)


def print_report(
    args: argparse.Namespace,
    cells: Sequence[Cell],
    idles: Sequence[IdleResult],
    busy_before: float,
    nofile: tuple[int, int],
    runtime: float,
) -> None:
    cpus = len(os.sched_getaffinity(0))
    facts = [
        *machine_facts(),
        ("Backend", args.backend),
        ("CPU busy before start", f"{busy_before:.0%}"),
        ("RLIMIT_NOFILE (soft/hard)", f"{nofile[0]}/{nofile[1]}"),
    ]
    out = [
        "# Chat streaming benchmark",
        "",
        markdown_table(("fact", "value"), facts),
        "",
        f"The fake OpenAI server, `agentplatform serve` and the load generator are three "
        f"processes sharing the same {cpus} CPUs, so every figure includes the others' CPU "
        f"contention. Reply: {args.tokens} content chunks, zero provider delay.",
        "",
        "## Time to first token the platform adds",
        "",
        ttft_table(cells),
        "",
        "## Tokens/s through the platform vs direct (all streams together)",
        "",
        throughput_table(cells),
        "",
        "## CPU per chat (timed phase)",
        "",
        cpu_table(cells, cpus),
        "",
    ]
    if idles:
        out += ["## Idle WebSocket connections held by one server process", ""]
        out += [idle_table(idles), ""]
        out += [
            "Each row is a fresh server process. Browsers and the `websockets` client offer "
            "permessage-deflate by default; the server accepts it.",
            "",
        ]
        for idle in idles:
            if idle.first_error:
                out += [f"First failure: `{idle.first_error}`", ""]
    errors = [c for c in cells if c.errors]
    for cell in errors:
        out += [f"{cell.transport} x{cell.streams} first error: `{cell.first_error}`", ""]
    out += ["## Goals (issue 3)", "", goals_table(cells, idles), ""]
    out += [f"Command: `{shlex.join(['python', '-m', 'bench.chat', *sys.argv[1:]])}`"]
    out += [f"Runtime: {runtime:.0f} s"]
    print("\n".join(out))


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, work_dir: Path) -> tuple[list[Cell], list[IdleResult]]:
    cells: list[Cell] = []
    idles: list[IdleResult] = []
    backend: Backend = args.backend
    with (
        fake_openai_process(args.tokens, API_KEY) as fake,
        fresh_database(backend, work_dir) as url,
    ):
        log(f"fake OpenAI at {fake.url} (pid {fake.pid}); migrating {backend}")
        migrate(url, work_dir)
        env = {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake.url,
            # Measure the streaming path, not the limits: no rate limits, caps or quotas.
            "AGENTPLATFORM_RATE_LIMITS": "false",
            "AGENTPLATFORM_GUEST_MESSAGES_PER_DAY": "0",
            "AGENTPLATFORM_GUEST_TOKENS_PER_DAY": "0",
            "AGENTPLATFORM_GUEST_MAX_AGENTS": "0",
        }
        with running_server(url, work_dir, env) as server:
            guests = await make_guests(server.base_url, min(CHAT_GUESTS, max(args.streams)))
            for streams in args.streams:
                log(f"{streams} stream(s): direct, websocket, sse")
                cells += await measure_streams(server, fake, guests, streams, args.samples)
        for compression in ("deflate", None) if args.idle > 0 else ():
            with running_server(url, work_dir, env) as server:
                label = _compression_label(compression)
                log(f"idle: {args.idle} sockets ({label}) on a fresh server, pid {server.pid}")
                guests = await make_guests(server.base_url, IDLE_GUESTS)
                idles.append(await hold_idle(server, guests, args.idle, compression))
    return cells, idles


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--streams", type=parse_int_list, default=[1, 50, 200])
    parser.add_argument("--tokens", type=int, default=50, help="content chunks per reply")
    parser.add_argument("--idle", type=int, default=5000, help="idle sockets to open (0: skip)")
    parser.add_argument("--samples", type=int, default=400, help="TTFT samples per cell")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    install_sigterm_handler()
    nofile = raise_open_files_limit()
    if args.idle + 200 > nofile[0]:
        log(f"warning: RLIMIT_NOFILE is {nofile[0]}; {args.idle} sockets may not fit")
    busy = background_load()
    started = perf_counter()
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop  # a cheaper client leaves more CPU to the server
    with (
        tempfile.TemporaryDirectory(prefix="bench-chat-") as tmp,
        asyncio.Runner(loop_factory=loop_factory) as runner,
    ):
        cells, idles = runner.run(run(args, Path(tmp)))
    print_report(args, cells, idles, busy, nofile, perf_counter() - started)


if __name__ == "__main__":
    main()
