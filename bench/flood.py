"""Flood: one address sends 100 requests/s for 10 s; a second address should not notice.

Run from the repository root::

    .venv/bin/python -m bench.flood                    # SQLite, the default limits
    .venv/bin/python -m bench.flood --backend postgres --rate 200 --seconds 10

A fresh database is migrated and a real ``agentplatform serve`` started on 127.0.0.1 with
the *default* limits (nothing in ``AGENTPLATFORM_*`` is passed but the database). Linux
routes all of 127/8 to the loopback interface, so binding the clients' sockets to
127.0.0.2 (the flooder) and 127.0.0.3 (the bystander) gives the server two addresses.

1. Quiet: the bystander, a guest of its own, sends ``GET /api/agents`` at ``--victim-rate``
   for ``--seconds``; its p50/p99 latency is the baseline.
2. Flood: the same again with a new bystander guest, while the flooder sends ``GET
   /api/agents`` at ``--rate`` for ``--seconds``, round-robin over ``--flood-guests`` guest
   sessions and with a different ``X-Forwarded-For`` on every request -- neither helps it,
   since the per-address budget counts the socket's address.

Both senders are open-loop (request *i* leaves at ``start + i / rate`` whether or not the
earlier ones have answered), so a slow server does not lower the offered load. Latency is
send to body read. The report (Markdown) goes to stdout, progress to stderr; the server is
always stopped, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

import httpx

from bench.common import (
    Backend,
    background_load,
    bearer,
    fresh_database,
    install_sigterm_handler,
    log,
    machine_facts,
    markdown_table,
    migrate,
    parse_backends,
    percentile,
    running_server,
)

FLOODER = "127.0.0.2"
BYSTANDER = "127.0.0.3"
PATH = "/api/agents"
MAX_RATIO = 2.0  # the bystander's p99 under flood may be at most this times its quiet p99
WARMUP_REQUESTS = 20


@dataclass
class Phase:
    """What one sender saw: latency of every answer, counts by status, transport errors."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0

    def p_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    def count(self, low: int, high: int) -> int:
        return sum(n for status, n in self.statuses.items() if low <= status < high)


def client_from(address: str, base_url: str, connections: int) -> httpx.AsyncClient:
    """A client whose sockets are bound to ``address``; no cookies are kept."""
    transport = httpx.AsyncHTTPTransport(
        local_address=address,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30.0)


async def new_guest(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/auth/guest")
    response.raise_for_status()
    client.cookies.clear()
    token: str = response.json()["token"]
    return token


async def paced(
    client: httpx.AsyncClient, rate: float, seconds: float, headers_for: list[dict[str, str]]
) -> Phase:
    """Send ``rate`` requests/s for ``seconds``, open-loop; ``headers_for[i % n]`` each."""
    phase = Phase()
    total = round(rate * seconds)

    async def one(i: int) -> None:
        started = perf_counter()
        try:
            response = await client.get(PATH, headers=headers_for[i % len(headers_for)])
        except httpx.HTTPError:
            phase.errors += 1
            return
        phase.latencies.append(perf_counter() - started)
        phase.statuses[response.status_code] += 1

    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.TaskGroup() as group:
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            group.create_task(one(i))
    return phase


@dataclass(frozen=True)
class Options:
    backends: list[Backend]
    rate: float
    victim_rate: float
    seconds: float
    flood_guests: int


@dataclass
class Report:
    backend: Backend
    quiet: Phase
    bystander: Phase
    flood: Phase
    idle_load: float

    @property
    def ratio(self) -> float:
        return self.bystander.p_ms(99) / self.quiet.p_ms(99)


async def measure(backend: Backend, base_url: str, options: Options) -> Report:
    async with (
        client_from(BYSTANDER, base_url, 32) as bystander,
        client_from(FLOODER, base_url, 128) as flooder,
    ):
        warm = [bearer(await new_guest(bystander))]
        await paced(bystander, 50, WARMUP_REQUESTS / 50, warm)  # connections, caches
        idle_load = background_load()
        log(f"[{backend}] quiet: {options.victim_rate:g} req/s for {options.seconds:g}s")
        quiet_guest = [bearer(await new_guest(bystander))]
        quiet = await paced(bystander, options.victim_rate, options.seconds, quiet_guest)
        # Rotating sessions and X-Forwarded-For: neither should buy the flooder anything.
        tokens = [await new_guest(flooder) for _ in range(options.flood_guests)]
        rotating = [
            {**bearer(tokens[i % len(tokens)]), "X-Forwarded-For": f"198.51.100.{i % 250 + 1}"}
            for i in range(250)
        ]
        flood_guest = [bearer(await new_guest(bystander))]
        log(f"[{backend}] flood: {options.rate:g} req/s from {FLOODER} for {options.seconds:g}s")
        flood, during = await asyncio.gather(
            paced(flooder, options.rate, options.seconds, rotating),
            paced(bystander, options.victim_rate, options.seconds, flood_guest),
        )
    return Report(backend, quiet, during, flood, idle_load)


def run_backend(backend: Backend, options: Options) -> Report:
    with tempfile.TemporaryDirectory(prefix=f"bench-flood-{backend}-") as tmp:
        work_dir = Path(tmp)
        with fresh_database(backend, work_dir) as url:
            log(f"[{backend}] migrating")
            migrate(url, work_dir)
            with running_server(url, work_dir) as server:
                log(f"[{backend}] server ready at {server.base_url}")
                return asyncio.run(measure(backend, server.base_url, options))


HEADERS = (
    "backend",
    "bystander quiet p50 ms",
    "quiet p99 ms",
    "under flood p50 ms",
    "under flood p99 ms",
    "p99 ratio",
    "flood 2xx",
    "flood 429",
    "flood other",
    "verdict",
)


def row(report: Report) -> list[object]:
    flood = report.flood
    other = sum(flood.statuses.values()) + flood.errors - flood.count(200, 300)
    other -= flood.statuses[429]
    ok = report.ratio <= MAX_RATIO and flood.statuses[429] > 0
    bystander_failures = report.bystander.errors + sum(
        n for status, n in report.bystander.statuses.items() if status != 200
    )
    return [
        report.backend,
        f"{report.quiet.p_ms(50):.2f}",
        f"{report.quiet.p_ms(99):.2f}",
        f"{report.bystander.p_ms(50):.2f}",
        f"{report.bystander.p_ms(99):.2f}",
        f"{report.ratio:.2f}x",
        flood.count(200, 300),
        flood.statuses[429],
        other,
        "pass" if ok and not bystander_failures else "FAIL",
    ]


def render(options: Options, reports: Sequence[Report], argv: Sequence[str]) -> str:
    facts = [f"- {name}: {value}" for name, value in machine_facts()]
    lines = [
        "# Flood: one address at full tilt, another unaffected",
        "",
        f"Command: `{shlex.join(['python', '-m', 'bench.flood', *argv])}`",
        "",
        *facts,
        f"- Server: one `agentplatform serve`, default limits; flooder {FLOODER} sends "
        f"`GET {PATH}` at {options.rate:g} req/s for {options.seconds:g}s over "
        f"{options.flood_guests} guest sessions with a new `X-Forwarded-For` each time; "
        f"bystander {BYSTANDER} sends the same at {options.victim_rate:g} req/s, first alone "
        "(quiet), then during the flood.",
        f"- Verdict: pass when the flood met 429s, the bystander got only 200s, and its p99 "
        f"under flood is within {MAX_RATIO:g}x its quiet p99. Server and load generator share "
        "the CPUs.",
    ]
    for report in reports:
        if report.idle_load > 0.10:
            lines.append(
                f"- {report.backend}: {report.idle_load:.0%} of the CPUs were busy before "
                "measuring; other work may skew these numbers."
            )
    lines += ["", markdown_table(HEADERS, [row(report) for report in reports])]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flood", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--backend", default="sqlite", help="sqlite, postgres or both")
    parser.add_argument("--rate", type=float, default=100.0, help="flooder requests/s")
    parser.add_argument("--victim-rate", type=float, default=20.0, help="bystander requests/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--flood-guests", type=int, default=5, help="sessions the flooder uses")
    args = parser.parse_args(argv)
    try:
        backends = parse_backends(args.backend)
    except ValueError as exc:
        parser.error(str(exc))
    if min(args.rate, args.victim_rate, args.seconds) <= 0 or args.flood_guests < 1:
        parser.error("rates, seconds and guests must be positive")
    return Options(backends, args.rate, args.victim_rate, args.seconds, args.flood_guests)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(arguments)
    install_sigterm_handler()
    reports = [run_backend(backend, options) for backend in options.backends]
    print(render(options, reports, arguments))
    return 0 if all(row(report)[-1] == "pass" for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
