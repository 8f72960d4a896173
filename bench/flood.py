"""Flood: one address sends 100 requests/s for 10 s; a second address should not notice.

Run from the repository root::

    .venv/bin/python -m bench.flood                    # SQLite, the default limits
    .venv/bin/python -m bench.flood --backend both --rounds 1

A fresh database is migrated and a real ``agentplatform serve`` started on 127.0.0.1 with
the *default* limits (nothing in ``AGENTPLATFORM_*`` is passed but the database). Linux
routes all of 127/8 to the loopback interface, so binding the clients' sockets to different
127.x addresses gives the server different clients: the bystander is 127.0.0.3, and each
round's flooder is an address of its own (127.0.0.2, 127.0.0.4, …).

Each round has two phases of ``--seconds``:

1. Quiet: the bystander, with a new guest session, sends ``GET /api/agents`` at
   ``--victim-rate`` (default 10/s, inside the default 20/s per address).
2. Flood: the same again, while the round's flooder sends ``GET /api/agents`` at ``--rate``,
   round-robin over ``--flood-guests`` guest sessions and with a different
   ``X-Forwarded-For`` on every request -- neither helps it, since the per-address budget
   counts the socket's address.

The bystander's latencies are pooled over the rounds (a p99 needs a few hundred samples) and
the flood's p99 is compared with the quiet one. Both senders are open-loop (request *i*
leaves at ``start + i / rate`` whether or not earlier ones have answered), so a slow server
does not lower the offered load. The flooder runs in a process of its own, so its client-side
work never delays the bystander's event loop (which would count as server latency). Latency
is send to body read. The report (Markdown) goes to stdout, progress to stderr; the server is
always stopped, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shlex
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
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

BYSTANDER = "127.0.0.3"
# One per round. Two at most: each round costs the bystander ~200 requests of the 600 a
# minute its address may send, and it must stay a well-behaved client throughout.
FLOODERS = ("127.0.0.2", "127.0.0.4")
PATH = "/api/agents"
MAX_RATIO = 2.0  # the bystander's p99 under flood may be at most this times its quiet p99
WARMUP_SECONDS = 2.0


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

    def failures(self) -> int:
        """Answers other than 200, and transport errors."""
        return self.errors + sum(n for status, n in self.statuses.items() if status != 200)

    def add(self, other: Phase) -> None:
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.errors += other.errors


def client_from(address: str, base_url: str, connections: int) -> httpx.AsyncClient:
    """A client whose sockets are bound to ``address``; no cookies are kept."""
    transport = httpx.AsyncHTTPTransport(
        local_address=address,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30.0)


async def new_guest(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/auth/guest")
    response.raise_for_status()
    client.cookies.clear()
    return bearer(response.json()["token"])


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


def ready() -> bool:
    """Run once in the flooder's process first, so its imports are done before any phase."""
    return True


def flood_process(
    address: str, base_url: str, rate: float, seconds: float, sessions: list[dict[str, str]]
) -> Phase:
    """One round's flooder, in its own process: sends, rotating sessions and XFF."""

    async def flood() -> Phase:
        async with client_from(address, base_url, 128) as flooder:
            rotating = [
                {**sessions[i % len(sessions)], "X-Forwarded-For": f"198.51.100.{i % 250 + 1}"}
                for i in range(250)
            ]
            return await paced(flooder, rate, seconds, rotating)

    return asyncio.run(flood())


async def flooder_sessions(address: str, base_url: str, count: int) -> list[dict[str, str]]:
    """Guest sessions made from the flooder's address, before its phase starts."""
    async with client_from(address, base_url, 1) as client:
        return [await new_guest(client) for _ in range(count)]


@dataclass(frozen=True)
class Options:
    backends: list[Backend]
    rate: float
    victim_rate: float
    seconds: float
    flood_guests: int
    rounds: int


@dataclass
class Report:
    backend: Backend
    idle_load: float
    quiet: Phase = field(default_factory=Phase)
    bystander: Phase = field(default_factory=Phase)
    flood: Phase = field(default_factory=Phase)
    round_ratios: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.bystander.p_ms(99) / self.quiet.p_ms(99)

    @property
    def passed(self) -> bool:
        failures = self.quiet.failures() + self.bystander.failures()
        return self.ratio <= MAX_RATIO and self.flood.statuses[429] > 0 and failures == 0


async def measure(backend: Backend, base_url: str, options: Options) -> Report:
    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        await loop.run_in_executor(pool, ready)  # start the flooder's process now
        async with client_from(BYSTANDER, base_url, 32) as bystander:
            warm = [await new_guest(bystander)]  # connections and caches; under 20/s
            await paced(bystander, options.victim_rate, WARMUP_SECONDS, warm)
            report = Report(backend, idle_load=background_load())
            for n, flooder in enumerate(FLOODERS[: options.rounds], start=1):
                log(f"[{backend}] round {n}: quiet, {options.victim_rate:g} req/s")
                quiet = await paced(
                    bystander, options.victim_rate, options.seconds, [await new_guest(bystander)]
                )
                log(f"[{backend}] round {n}: flood, {options.rate:g} req/s from {flooder}")
                tokens = await flooder_sessions(flooder, base_url, options.flood_guests)
                args = (flooder, base_url, options.rate, options.seconds, tokens)
                sessions = [await new_guest(bystander)]
                flood, during = await asyncio.gather(
                    loop.run_in_executor(pool, flood_process, *args),
                    paced(bystander, options.victim_rate, options.seconds, sessions),
                )
                report.round_ratios.append(during.p_ms(99) / quiet.p_ms(99))
                report.quiet.add(quiet)
                report.bystander.add(during)
                report.flood.add(flood)
    return report


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
    "quiet p50 ms",
    "quiet p99 ms",
    "under flood p50 ms",
    "under flood p99 ms",
    "p99 ratio (per round)",
    "flood 2xx",
    "flood 429",
    "flood other",
    "bystander non-200",
    "verdict",
)


def row(report: Report) -> list[object]:
    flood = report.flood
    other = flood.errors + sum(
        n for status, n in flood.statuses.items() if status != 429 and not 200 <= status < 300
    )
    rounds = ", ".join(f"{ratio:.2f}" for ratio in report.round_ratios)
    return [
        report.backend,
        f"{report.quiet.p_ms(50):.2f}",
        f"{report.quiet.p_ms(99):.2f}",
        f"{report.bystander.p_ms(50):.2f}",
        f"{report.bystander.p_ms(99):.2f}",
        f"{report.ratio:.2f}x ({rounds})",
        flood.count(200, 300),
        flood.statuses[429],
        other,
        report.quiet.failures() + report.bystander.failures(),
        "pass" if report.passed else "FAIL",
    ]


def render(options: Options, reports: Sequence[Report], argv: Sequence[str]) -> str:
    samples = round(options.victim_rate * options.seconds) * options.rounds
    lines = [
        "# Flood: one address at full tilt, another unaffected",
        "",
        f"Command: `{shlex.join(['python', '-m', 'bench.flood', *argv])}`",
        "",
        *[f"- {name}: {value}" for name, value in machine_facts()],
        f"- Server: one `agentplatform serve`, default limits. {options.rounds} round(s); in "
        f"each, a flooder address sends `GET {PATH}` at {options.rate:g} req/s for "
        f"{options.seconds:g}s over {options.flood_guests} guest sessions with a new "
        f"`X-Forwarded-For` each time, while the bystander {BYSTANDER} sends the same at "
        f"{options.victim_rate:g} req/s; before it, the bystander alone (quiet). Bystander "
        f"percentiles pool {samples} samples per column.",
        f"- Verdict: pass when the flood met 429s, the bystander got only 200s, and its pooled "
        f"p99 under flood is within {MAX_RATIO:g}x its quiet p99. Server and load generator "
        "share the CPUs.",
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
    parser.add_argument("--victim-rate", type=float, default=10.0, help="bystander requests/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--flood-guests", type=int, default=5, help="sessions the flooder uses")
    parser.add_argument("--rounds", type=int, default=2, help=f"1 to {len(FLOODERS)}")
    args = parser.parse_args(argv)
    try:
        backends = parse_backends(args.backend)
    except ValueError as exc:
        parser.error(str(exc))
    if min(args.rate, args.victim_rate, args.seconds) <= 0 or args.flood_guests < 1:
        parser.error("rates, seconds and guests must be positive")
    if not 1 <= args.rounds <= len(FLOODERS):
        parser.error(f"--rounds must be 1 to {len(FLOODERS)}")
    return Options(
        backends, args.rate, args.victim_rate, args.seconds, args.flood_guests, args.rounds
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(arguments)
    install_sigterm_handler()
    reports = [run_backend(backend, options) for backend in options.backends]
    print(render(options, reports, arguments))
    return 0 if all(report.passed for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
