"""Shared benchmark plumbing: databases, a real server process, a load loop, and reporting.

Everything here is backend-agnostic and reused by every ``bench.*`` module:

* ``fresh_database(backend, work_dir)`` yields a SQLAlchemy URL of an empty database
  (a SQLite file, or a database on a throwaway PostgreSQL that is stopped afterwards);
* ``migrate(url, work_dir)`` runs ``agentplatform migrate`` against it;
* ``running_server(url, work_dir)`` runs ``agentplatform serve`` on a free loopback port
  until ``GET /ready`` answers 200, yields a ``Server`` (base URL, pid, CPU time), and
  always stops the process;
* ``run_load(send, total, concurrency, server)`` drives ``send(i)`` from ``concurrency``
  tasks and returns per-request latencies, errors, wall time and CPU time of both ends;
* ``percentile``, ``markdown_table`` and ``machine_facts`` format the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from time import perf_counter
from types import FrameType
from typing import Literal

import httpx

Backend = Literal["sqlite", "postgres"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")

LOOPBACK = "127.0.0.1"
SERVER_READY_TIMEOUT = 60.0
SERVER_STOP_TIMEOUT = 20.0
_POLL_INTERVAL = 0.1
CLIENT_KEEPALIVE = 2.0  # seconds; below uvicorn's default timeout_keep_alive of 5
_START_ATTEMPTS = 3


# --------------------------------------------------------------------------- arguments


def parse_backends(value: str) -> list[Backend]:
    """``sqlite``, ``postgres`` or ``both``."""
    if value == "both":
        return list(BACKENDS)
    for backend in BACKENDS:
        if value == backend:
            return [backend]
    raise ValueError(f"unknown backend {value!r}; use sqlite, postgres or both")


def parse_int_list(value: str) -> list[int]:
    """``"1,32"`` -> ``[1, 32]``; every item must be a positive integer."""
    items = [int(part) for part in value.split(",") if part.strip()]
    if not items or any(item < 1 for item in items):
        raise ValueError(f"expected a comma-separated list of positive integers, got {value!r}")
    return items


def log(message: str) -> None:
    """Progress goes to stderr so stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation, like numpy's default."""
    if not values:
        return float("nan")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; columns after the first are right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]
    return "\n".join([line(cells[0]), "| " + " | ".join(rule) + " |", *map(line, cells[1:])])


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for text_line in Path("/proc/cpuinfo").read_text().splitlines():
            if text_line.startswith("model name"):
                return text_line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def machine_facts() -> list[tuple[str, str]]:
    """What the numbers depend on, as (name, value) pairs."""
    return [
        ("CPUs", f"{os.cpu_count()} ({_cpu_model()})"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("OS", platform.platform()),
    ]


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def install_sigterm_handler() -> None:
    """Treat SIGTERM like Ctrl-C, so ``finally`` blocks stop our servers.

    It calls whatever handles SIGINT at that moment: inside ``asyncio.run`` that handler
    cancels the main task (clean unwinding, never an exception raised at a random
    bytecode, which Python may swallow in a weakref callback or ``__del__``); outside,
    Python's default handler raises KeyboardInterrupt.
    """

    def _forward(_signum: int, frame: FrameType | None) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _forward)


def _cli_command() -> list[str]:
    script = Path(sys.executable).parent / "agentplatform"
    if script.is_file():
        return [str(script)]
    found = shutil.which("agentplatform")
    return [found] if found else [sys.executable, "-m", "agentplatform"]


def server_env(url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without stray ``AGENTPLATFORM_*`` settings, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTPLATFORM_")}
    env["AGENTPLATFORM_DATABASE_URL"] = url
    env["AGENTPLATFORM_LOG_LEVEL"] = "warning"
    env.update(extra or {})
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<could not read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty>"


def migrate(url: str, work_dir: Path) -> None:
    """``agentplatform migrate`` against ``url``; raises with its output on failure."""
    result = subprocess.run(
        [*_cli_command(), "migrate"],
        env=server_env(url),
        cwd=work_dir,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"agentplatform migrate failed (exit {result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )


@contextlib.contextmanager
def fresh_database(backend: Backend, work_dir: Path) -> Iterator[str]:
    """Yield the URL of an empty database; a PostgreSQL server is stopped on exit."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{work_dir / 'bench.sqlite'}"
        return
    from tests.support.services import PostgresServer, missing_reason

    reason = missing_reason("postgres")
    if reason is not None:
        raise RuntimeError(f"cannot start PostgreSQL: {reason}")
    pg_dir = work_dir / "postgres"
    pg_dir.mkdir(parents=True, exist_ok=True)
    server = PostgresServer.start(pg_dir)
    try:
        yield server.create_database("bench")
    finally:
        server.stop()


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=SERVER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=SERVER_STOP_TIMEOUT)


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str) -> bool:
    """Poll ``GET /ready`` until 200; False if the process exits or the deadline passes."""
    deadline = time.monotonic() + SERVER_READY_TIMEOUT
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/ready").status_code == 200:
                    return True
            time.sleep(_POLL_INTERVAL)
    return False


@dataclass(frozen=True)
class Server:
    """A running ``agentplatform serve``: where to reach it and which process it is."""

    base_url: str
    pid: int
    log_path: Path | None = None  # its stdout and stderr

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` of the server's output (warnings and errors at our log level)."""
        return _tail(self.log_path, lines) if self.log_path else "<no log>"

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process (all its threads) has used so far."""
        return process_cpu_seconds(self.pid)


def process_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` from ``/proc/<pid>/stat`` (Linux); NaN where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine (all CPUs, all processes) from ``/proc/stat``."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return float("nan")
    ticks = [int(value) for value in first[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def background_load(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over ``seconds`` (0-1): other work that would skew results."""
    before = machine_cpu_seconds()
    time.sleep(seconds)
    return (machine_cpu_seconds() - before) / (seconds * (os.cpu_count() or 1))


@contextlib.contextmanager
def running_server(
    url: str, work_dir: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Run ``agentplatform serve`` against ``url`` until ``/ready``; yield it; always stop it.

    The server runs in its own session, so a Ctrl-C in the terminal reaches only us and
    the shutdown order stays ours: server first, then its database.
    """
    log_path = work_dir / "server.log"
    for _attempt in range(_START_ATTEMPTS):
        port = free_port()
        base_url = f"http://{LOOPBACK}:{port}"
        with log_path.open("ab") as log_file:
            proc = subprocess.Popen(
                [*_cli_command(), "serve", "--host", LOOPBACK, "--port", str(port)],
                env=server_env(url, extra_env),
                cwd=work_dir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            if _wait_ready(proc, base_url):
                yield Server(base_url=base_url, pid=proc.pid, log_path=log_path)
                return
        finally:
            _stop_process(proc)
        if "address already in use" not in _tail(log_path, 200).lower():
            break
    raise RuntimeError(f"the server did not become ready; log {log_path}:\n{_tail(log_path)}")


# --------------------------------------------------------------------------- load


def http_client(base_url: str, concurrency: int, timeout: float = 60.0) -> httpx.AsyncClient:
    """One client for all tasks: a pool as large as the concurrency, and no cookie jar.

    Cookies are refused so a ``Set-Cookie`` from one response never changes who the next
    request is; requests authenticate with explicit ``Authorization`` headers. Idle
    connections are dropped after ``CLIENT_KEEPALIVE`` seconds, before uvicorn's own 5 s
    keep-alive timeout, so the client never reuses a socket the server is closing (which
    shows up as a rare ``ReadError``).
    """
    limits = httpx.Limits(
        max_connections=concurrency,
        max_keepalive_connections=concurrency,
        keepalive_expiry=CLIENT_KEEPALIVE,
    )
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout, cookies=no_cookies)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class LoadResult:
    """What one cell of a benchmark measured; latencies are in seconds."""

    requests: int
    concurrency: int
    elapsed: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    client_cpu: float = float("nan")  # seconds of this process's CPU during the cell
    server_cpu: float = float("nan")  # seconds of the server's CPU, if it was sampled
    machine_cpu: float = float("nan")  # busy seconds of all CPUs, every process

    @property
    def throughput(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else float("nan")

    def p_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    def cpu_busy(self) -> float:
        """Share of all the machine's CPUs that were busy during the cell (0-1)."""
        return self.machine_cpu / (self.elapsed * (os.cpu_count() or 1))

    @property
    def other_cpu(self) -> float:
        """Busy CPU not spent in the server or the client: the database, the kernel, etc."""
        return max(0.0, self.machine_cpu - self.server_cpu - self.client_cpu)


Send = Callable[[int], Awaitable[httpx.Response]]


async def run_load(
    send: Send, total: int, concurrency: int, server: Server | None = None
) -> LoadResult:
    """Issue ``send(0) .. send(total - 1)`` from ``concurrency`` tasks, each in a closed loop.

    Latency is ``perf_counter`` around each call (the body is read by then); any non-2xx
    status or transport error counts as an error. Requests per second is ``total`` over
    the wall time of the whole cell. CPU time of this process, and of ``server`` if given,
    is sampled around the cell.
    """
    result = LoadResult(requests=total, concurrency=concurrency, elapsed=0.0)
    indexes = iter(range(total))

    async def worker() -> None:
        for i in indexes:  # shared iterator: each index is taken by exactly one task
            started = perf_counter()
            try:
                response = await send(i)
                failure = (
                    None
                    if response.is_success
                    else f"HTTP {response.status_code}: {response.text[:300]}"
                )
            except httpx.HTTPError as exc:
                cause = exc.__cause__ or exc.__context__  # e.g. ConnectionResetError
                failure = f"{type(exc).__name__}: {str(exc) or repr(cause)}"
            result.latencies.append(perf_counter() - started)
            if failure is not None:
                result.errors += 1
                result.first_error = result.first_error or failure

    server_cpu = server.cpu_seconds() if server else float("nan")
    client_cpu = time.process_time()
    machine_cpu = machine_cpu_seconds()
    started = perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, total)):
            group.create_task(worker())
    result.elapsed = perf_counter() - started
    result.client_cpu = time.process_time() - client_cpu
    result.machine_cpu = machine_cpu_seconds() - machine_cpu
    if server:
        result.server_cpu = server.cpu_seconds() - server_cpu
    return result


def result_row(operation: str, result: LoadResult) -> list[object]:
    """``operation | concurrency | requests | errors | p50 ms | p99 ms | req/s``."""
    return [
        operation,
        result.concurrency,
        result.requests,
        result.errors,
        f"{result.p_ms(50):.2f}",
        f"{result.p_ms(99):.2f}",
        f"{result.throughput:.0f}",
    ]


RESULT_HEADERS = ("operation", "concurrency", "requests", "errors", "p50 ms", "p99 ms", "req/s")
CPU_HEADERS = (
    "operation",
    "concurrency",
    "server CPU ms/req",
    "client CPU ms/req",
    "other CPU ms/req",
    "CPUs busy",
)


def cpu_row(operation: str, result: LoadResult) -> list[object]:
    """CPU per request of server, client and everything else, and overall CPU use."""

    def per_request(seconds: float) -> str:
        return f"{seconds * 1000 / result.requests:.2f}"

    return [
        operation,
        result.concurrency,
        per_request(result.server_cpu),
        per_request(result.client_cpu),
        per_request(result.other_cpu),
        f"{result.cpu_busy():.0%}",
    ]
