"""A zero-delay fake OpenAI server in its own process, for benchmarks.

``python -m bench.fakes --tokens 50 --api-key K`` starts ``tests.fakes.openai_server.FakeOpenAI``
answering every chat completion with ``--tokens`` content chunks and no delays, prints its
``base_url`` on one line of stdout, and serves until stdin closes or it gets SIGTERM/SIGINT.

``fake_openai_process(tokens, api_key)`` runs exactly that as a child process and yields where
it listens and its pid. The fake gets its own process so it does not share a GIL (or an event
loop) with the server under test or with the load generator; on a small machine all three
still share the CPUs, which the reports say.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

LISTEN_BACKLOG = 4096
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def reply_chunks(tokens: int) -> list[str]:
    """``tokens`` short, distinct text chunks: ``"w0 "``, ``"w1 "``, …"""
    return [f"w{i} " for i in range(tokens)]


@dataclass(frozen=True)
class FakeProcess:
    """A running fake: the ``base_url`` to give the SDK (ends in ``/v1``) and its pid."""

    url: str
    pid: int


@contextlib.contextmanager
def fake_openai_process(tokens: int, api_key: str) -> Iterator[FakeProcess]:
    """Run ``python -m bench.fakes`` until the block ends; always stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fakes", "--tokens", str(tokens), "--api-key", api_key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        url = _read_url(proc)
        yield FakeProcess(url=url, pid=proc.pid)
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the child's cue to stop
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


def _read_url(proc: subprocess.Popen[bytes]) -> str:
    """The first stdout line of the child, or an error if it says nothing in time."""
    stdout = proc.stdout
    if stdout is None:
        raise RuntimeError("the fake's stdout is not a pipe")
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    url = line[0].decode().strip() if line else ""
    if not url.startswith("http"):
        raise RuntimeError(f"the fake OpenAI server did not start (exit code {proc.poll()})")
    return url


def _serve(tokens: int, api_key: str) -> None:
    # Imported here: the launcher side of this module needs neither uvicorn nor the fakes.
    from tests.fakes.openai_server import FakeOpenAI
    from tests.fakes.server import Script

    with contextlib.suppress(ImportError):
        import uvloop

        # The fake runs ``asyncio.run`` in its own thread; uvloop makes it cheaper, which
        # leaves more of the shared CPUs to the server under test (and to the direct client).
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    fake = FakeOpenAI(api_key=api_key, default=Script(text=reply_chunks(tokens)))
    fake.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        # The fake listens with a backlog of 128; a burst of 200 new connections (the SDK
        # keeps at most 100 idle) would overflow it and stall on SYN retries for a second.
        # listen() again on a listening socket only changes the backlog.
        if fake._socket is not None:
            fake._socket.listen(LISTEN_BACKLOG)
        print(fake.url, flush=True)
        threading.Thread(target=_set_on_eof, args=(stop,), daemon=True).start()
        stop.wait()
    finally:
        fake.stop()


def _set_on_eof(stop: threading.Event) -> None:
    sys.stdin.read()  # returns when the parent closes our stdin (or dies)
    stop.set()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a zero-delay fake OpenAI server.")
    parser.add_argument("--tokens", type=int, default=50, help="content chunks per reply")
    parser.add_argument("--api-key", default="bench-key", help="the key the fake accepts")
    args = parser.parse_args(argv)
    _serve(args.tokens, args.api_key)


if __name__ == "__main__":
    main()
