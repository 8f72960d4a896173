"""HTTP API latency and throughput against a real ``agentplatform serve`` process.

Run from the repository root::

    .venv/bin/python -m bench.api                      # both backends, c=1 and c=32
    .venv/bin/python -m bench.api --backend sqlite --requests 500 --concurrency 1,8,32

For each backend it makes a fresh database (a SQLite file in a temporary directory, or a
database on a throwaway PostgreSQL from ``tests.support.services``), runs
``agentplatform migrate``, starts ``agentplatform serve`` on a free loopback port, and
waits for ``GET /ready``. Over HTTP it then creates two guests -- one owning 10 agents and
a conversation, one for the "create agent" row so the first keeps exactly 10 agents -- and
seeds two conversations (100 and 10,000 messages of ~200 characters) straight through
``MessageRepository.append_many``, since there is no HTTP route for adding messages.

Each operation runs at each concurrency as ``concurrency`` asyncio tasks sharing one
``httpx.AsyncClient``, in a closed loop, after an uncounted warm-up. A cell runs
``--requests`` requests (default 2,000) or, at concurrency 1, ``--serial-requests``
(default a quarter of that). Latency is ``perf_counter`` around each request including
reading the body; any non-2xx answer is an error; req/s is requests over the cell's wall
time. The report (Markdown) goes to stdout, progress to stderr. The server's rate limits
are raised out of reach (still counted) and the guest agent quota lifted, since one client
address makes thousands of requests a minute here.

The load generator and the server share the machine's CPUs, so on a small box the client
takes a real share of them: read the numbers as "this machine, both ends", not as the
server's ceiling. Servers are always stopped, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from agentplatform.store.db import Database
from agentplatform.store.repositories import MessageRepository
from bench.common import (
    CPU_HEADERS,
    RESULT_HEADERS,
    Backend,
    LoadResult,
    Send,
    Server,
    background_load,
    bearer,
    cpu_row,
    fresh_database,
    http_client,
    install_sigterm_handler,
    log,
    machine_facts,
    markdown_table,
    migrate,
    parse_backends,
    parse_int_list,
    result_row,
    run_load,
    running_server,
)

AGENTS = 10
SHORT_CONVERSATION = 100
LONG_CONVERSATION = 10_000
SEED_BATCH = 1_000
PAGE = 50
WARMUP_FRACTION = 0.1
MAX_WARMUP = 200
BUSY_WARNING = 0.10  # CPU share busy with our server idle above which results are suspect
# One client address and a few users make thousands of requests a minute, so the server's
# limits are raised out of reach: the limiter still counts every request (its cost is in
# the numbers), it just never refuses one. The guest agent quota is lifted for "create agent".
UNLIMITED_RATE = "1000000/second"
SERVER_ENV = {
    "AGENTPLATFORM_RATE_LIMIT_IP": UNLIMITED_RATE,
    "AGENTPLATFORM_RATE_LIMIT_USER": UNLIMITED_RATE,
    "AGENTPLATFORM_RATE_LIMIT_GUEST_SESSIONS": UNLIMITED_RATE,
    "AGENTPLATFORM_GUEST_MAX_AGENTS": "0",
}

# --------------------------------------------------------------------------- seed data

_OPENERS = (
    "Could you help me with",
    "I'm trying to figure out",
    "Quick question about",
    "Can you explain",
    "What's the best way to handle",
    "I need a second opinion on",
)
_TOPICS = (
    "the quarterly sales report for the northern region",
    "retry logic in our payment webhook handler",
    "a polite reply to a customer asking for a refund",
    "the migration plan from the old billing system",
    "indexing strategy for a table with forty million rows",
    "summarising yesterday's incident review",
    "a travel itinerary for three days in Lisbon",
    "unit tests for the date parsing helper",
)
_DETAILS = (
    "The deadline is Friday and the numbers still don't add up.",
    "We tried the obvious fix last week and it only made things worse.",
    "Please keep it short, my manager will read it on their phone.",
    "Assume the reader has no background in statistics.",
    "There are about 200 edge cases and I've listed the worst ones below.",
    "It has to work with the existing API, we can't change clients yet.",
)
_ANSWERS = (
    "Sure. First, separate the inputs you control from the ones you don't.",
    "Here's a plan in three steps, starting with the cheapest experiment.",
    "The short answer is yes, but only if the data is sorted before you merge it.",
    "I'd start by measuring, because the bottleneck is rarely where it seems.",
    "A good rule of thumb is to make the common case fast and the rare case correct.",
    "Based on what you described, the second option carries less risk.",
    "You can verify this by replaying last week's traffic against a staging copy.",
    "One caveat: time zones will bite you at the month boundary, so store UTC.",
)
_TARGET_CHARS = 200


def _message(rng: random.Random, role: str) -> str:
    """A plausible chat message of roughly 200 characters."""
    pool: Sequence[str] = _DETAILS if role == "user" else _ANSWERS
    parts = [f"{rng.choice(_OPENERS)} {rng.choice(_TOPICS)}?"] if role == "user" else []
    while sum(len(p) + 1 for p in parts) < _TARGET_CHARS - 40:
        parts.append(rng.choice(pool))
    return " ".join(parts)[: _TARGET_CHARS + 40]


def conversation_turns(count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` messages alternating user/assistant, deterministic for ``seed``."""
    rng = random.Random(seed)
    roles = itertools.cycle(("user", "assistant"))
    return [(role, _message(rng, role)) for role, _ in zip(roles, range(count), strict=False)]


# --------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class Fixture:
    """What the measured requests touch."""

    reader_token: str  # owns the 10 agents and both conversations
    writer_token: str  # the "create agent" row adds its agents here
    short_conversation: str
    long_conversation: str


def _json(response: httpx.Response, expected: int) -> Any:
    if response.status_code != expected:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code} (expected {expected}): {response.text[:500]}"
        )
    return response.json()


async def _guest(client: httpx.AsyncClient) -> tuple[str, str]:
    body = _json(await client.post("/api/auth/guest"), 201)
    return str(body["token"]), str(body["user"]["id"])


async def _seed(db: Database, user_id: str, conversation_id: str, count: int) -> None:
    messages = MessageRepository(db)
    turns = conversation_turns(count, seed=count)
    for start in range(0, count, SEED_BATCH):
        await messages.append_many(user_id, conversation_id, turns[start : start + SEED_BATCH])


async def _check_pages(client: httpx.AsyncClient, fixture: Fixture) -> None:
    """The measured reads return what they claim to: 10 agents, the last 50 messages."""
    auth = bearer(fixture.reader_token)
    agents = _json(await client.get("/api/agents", params={"limit": AGENTS}, headers=auth), 200)
    if len(agents["items"]) != AGENTS or agents["next_cursor"] is not None:
        raise RuntimeError(f"expected exactly {AGENTS} agents, got {len(agents['items'])}")
    for conversation, size in (
        (fixture.short_conversation, SHORT_CONVERSATION),
        (fixture.long_conversation, LONG_CONVERSATION),
    ):
        page = _json(
            await client.get(
                f"/api/conversations/{conversation}/messages",
                params={"limit": PAGE},
                headers=auth,
            ),
            200,
        )
        seqs = [m["seq"] for m in page["items"]]
        if seqs != list(range(size - PAGE + 1, size + 1)):
            raise RuntimeError(f"conversation of {size}: unexpected page {seqs[:3]}...")


async def set_up(client: httpx.AsyncClient, db: Database) -> Fixture:
    reader_token, reader_id = await _guest(client)
    writer_token, _ = await _guest(client)
    auth = bearer(reader_token)
    agent_ids = []
    for n in range(AGENTS):
        body = {"name": f"Research assistant {n + 1}", "description": "Benchmark agent"}
        agent = _json(await client.post("/api/agents", json=body, headers=auth), 201)
        agent_ids.append(str(agent["id"]))
    conversations = []
    for size in (SHORT_CONVERSATION, LONG_CONVERSATION):
        body = {"agent_id": agent_ids[0], "title": f"{size} messages"}
        conversation = _json(await client.post("/api/conversations", json=body, headers=auth), 201)
        started = time.perf_counter()
        await _seed(db, reader_id, str(conversation["id"]), size)
        log(f"  seeded {size:,} messages in {time.perf_counter() - started:.1f}s")
        conversations.append(str(conversation["id"]))
    fixture = Fixture(reader_token, writer_token, conversations[0], conversations[1])
    await _check_pages(client, fixture)
    return fixture


async def database_version(db: Database) -> str:
    query = "select sqlite_version()" if db.is_sqlite else "show server_version"
    async with db.engine.connect() as conn:
        version = (await conn.execute(text(query))).scalar_one()
    return f"{'SQLite' if db.is_sqlite else 'PostgreSQL'} {version}"


# --------------------------------------------------------------------------- operations

SendFactory = Callable[[httpx.AsyncClient, Fixture], Send]
Operation = tuple[str, SendFactory]


def _guest_session(client: httpx.AsyncClient, _: Fixture) -> Send:
    def send(_i: int) -> Awaitable[httpx.Response]:
        return client.post("/api/auth/guest")

    return send


_agent_numbers = itertools.count(1)  # unique across warm-up, cells and backends


def _create_agent(client: httpx.AsyncClient, fixture: Fixture) -> Send:
    auth = bearer(fixture.writer_token)

    def send(_i: int) -> Awaitable[httpx.Response]:
        body = {"name": f"Bench agent {next(_agent_numbers)}"}
        return client.post("/api/agents", json=body, headers=auth)

    return send


def _list_agents(client: httpx.AsyncClient, fixture: Fixture) -> Send:
    auth = bearer(fixture.reader_token)

    def send(_i: int) -> Awaitable[httpx.Response]:
        return client.get("/api/agents", params={"limit": AGENTS}, headers=auth)

    return send


def _messages(conversation: Callable[[Fixture], str]) -> SendFactory:
    def make(client: httpx.AsyncClient, fixture: Fixture) -> Send:
        auth = bearer(fixture.reader_token)
        path = f"/api/conversations/{conversation(fixture)}/messages"

        def send(_i: int) -> Awaitable[httpx.Response]:
            return client.get(path, params={"limit": PAGE}, headers=auth)

        return send

    return make


OPERATIONS: tuple[Operation, ...] = (
    ("guest session", _guest_session),
    ("create agent", _create_agent),
    (f"list {AGENTS} agents", _list_agents),
    (
        f"last {PAGE} of {SHORT_CONVERSATION:,} messages",
        _messages(lambda f: f.short_conversation),
    ),
    (
        f"last {PAGE} of {LONG_CONVERSATION:,} messages",
        _messages(lambda f: f.long_conversation),
    ),
)

# --------------------------------------------------------------------------- run


@dataclass(frozen=True)
class Options:
    backends: list[Backend]
    requests: int
    serial_requests: int
    concurrency: list[int]

    def total(self, concurrency: int) -> int:
        return self.serial_requests if concurrency == 1 else self.requests


def warmup_count(total: int, concurrency: int) -> int:
    return min(MAX_WARMUP, max(concurrency * 2, int(total * WARMUP_FRACTION)))


@dataclass
class BackendReport:
    backend: Backend
    version: str
    idle_load: float  # CPU busy share with the server idle, just before measuring
    rows: list[list[object]]
    cpu_rows: list[list[object]]
    errors: list[str]
    setup_seconds: float
    measure_seconds: float
    server_log: str  # the tail of the server's output when some request failed, else ""


async def measure(backend: Backend, url: str, server: Server, options: Options) -> BackendReport:
    db = Database(url)
    client = http_client(server.base_url, max(options.concurrency))
    try:
        started = time.perf_counter()
        version = await database_version(db)
        fixture = await set_up(client, db)
        setup_seconds = time.perf_counter() - started
        idle_load = await asyncio.to_thread(background_load)
        if idle_load > BUSY_WARNING:
            log(f"  warning: CPUs already {idle_load:.0%} busy before measuring")
        rows: list[list[object]] = []
        cpu_rows: list[list[object]] = []
        errors: list[str] = []
        started = time.perf_counter()
        for name, factory in OPERATIONS:
            send = factory(client, fixture)
            for concurrency in options.concurrency:
                total = options.total(concurrency)
                await run_load(send, warmup_count(total, concurrency), concurrency)
                result: LoadResult = await run_load(send, total, concurrency, server)
                rows.append(result_row(name, result))
                cpu_rows.append(cpu_row(name, result))
                log(f"  {name} c={concurrency}: {result.throughput:.0f} req/s")
                if result.first_error:
                    errors.append(f"{name} (c={concurrency}): {result.first_error}")
        measure_seconds = time.perf_counter() - started
        await _check_pages(client, fixture)  # the writes above did not leak into the reads
        server_log = server.log_tail() if errors else ""
        return BackendReport(
            backend,
            version,
            idle_load,
            rows,
            cpu_rows,
            errors,
            setup_seconds,
            measure_seconds,
            server_log,
        )
    finally:
        await client.aclose()
        await db.dispose()


def run_backend(backend: Backend, options: Options) -> BackendReport:
    with tempfile.TemporaryDirectory(prefix=f"agentplatform-bench-{backend}-") as tmp:
        work_dir = Path(tmp)
        log(f"[{backend}] preparing database")
        with fresh_database(backend, work_dir) as url:
            migrate(url, work_dir)
            with running_server(url, work_dir, SERVER_ENV) as server:
                log(f"[{backend}] server ready at {server.base_url}")
                return asyncio.run(measure(backend, url, server, options))


def render(options: Options, reports: Sequence[BackendReport], argv: Sequence[str]) -> str:
    facts = [f"- {name}: {value}" for name, value in machine_facts()]
    counts = ", ".join(f"c={c}: {options.total(c):,}" for c in options.concurrency)
    lines = [
        "# agentplatform API benchmark",
        "",
        f"Command: `{shlex.join(['python', '-m', 'bench.api', *argv])}`",
        "",
        *facts,
        "- The server (one uvicorn process) and this load generator (one asyncio process, "
        "httpx) share these CPUs; client CPU time is part of every number below.",
        f"- Requests per cell: {counts}; each cell follows an uncounted warm-up of up to "
        f"{MAX_WARMUP} requests at the same concurrency.",
        "- Latency: request sent to body read, per request; req/s: requests / cell wall time.",
        "- Server settings: "
        + ", ".join(f"`{key}={value}`" for key, value in SERVER_ENV.items())
        + " (rate limits still counted, never reached; no guest agent quota).",
    ]
    for report in reports:
        lines += [
            "",
            f"## {report.backend} ({report.version})",
            "",
            f"Setup {report.setup_seconds:.1f}s (two guests, {AGENTS} agents, conversations "
            f"of {SHORT_CONVERSATION:,} and {LONG_CONVERSATION:,} messages); "
            f"measurement {report.measure_seconds:.1f}s. CPUs busy with the server idle, "
            f"just before measuring: {report.idle_load:.0%}"
            + (
                " -- **other work was running; these numbers are skewed.**"
                if report.idle_load > BUSY_WARNING
                else "."
            ),
            "",
            markdown_table(RESULT_HEADERS, report.rows),
            "",
            "Where the CPU went: server = the uvicorn process and its threads; client = this "
            "load generator; other = the rest of the machine's busy time ("
            + (
                "the kernel and unrelated processes: well above 0 means other work skewed the cell"
                if report.backend == "sqlite"
                else "mostly PostgreSQL, plus the kernel and any unrelated process"
            )
            + "); CPUs busy = all busy time as a share of all CPUs.",
            "",
            markdown_table(CPU_HEADERS, report.cpu_rows),
        ]
        if report.errors:
            lines += ["", "First error per failing cell:", ""]
            lines += [f"- {error}" for error in report.errors]
            lines += ["", "Server log (tail):", "", "```", report.server_log, "```"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--backend", default="both", help="sqlite, postgres or both")
    parser.add_argument(
        "--requests", type=int, default=2_000, help="requests per cell at concurrency > 1"
    )
    parser.add_argument(
        "--serial-requests",
        type=int,
        default=None,
        help="requests per cell at concurrency 1 (default: a quarter of --requests)",
    )
    parser.add_argument("--concurrency", default="1,32", help="comma-separated, e.g. 1,32")
    args = parser.parse_args(argv)
    try:
        backends = parse_backends(args.backend)
        concurrency = parse_int_list(args.concurrency)
    except ValueError as exc:
        parser.error(str(exc))
    if args.requests < 1 or (args.serial_requests is not None and args.serial_requests < 1):
        parser.error("request counts must be positive")
    serial = args.serial_requests or max(1, args.requests // 4)
    return Options(backends, args.requests, serial, concurrency)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(arguments)
    install_sigterm_handler()
    reports: list[BackendReport] = []
    started = time.perf_counter()
    try:
        for backend in options.backends:
            reports.append(run_backend(backend, options))
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        if reports:
            print(render(options, reports, arguments))
        return 130
    except RuntimeError as exc:  # a server or setup step failed; its log tail is in exc
        log(f"error: {exc}")
        if reports:
            print(render(options, reports, arguments))
        return 1
    print(render(options, reports, arguments))
    log(f"total {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
