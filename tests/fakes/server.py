"""Shared machinery of the wire-level fakes: scripts, recorded requests, a loopback server.

A fake is an ASGI app served by uvicorn on ``127.0.0.1:<free port>`` in a background thread,
so it answers any client, sync or async, on any event loop. Each model call consumes one
``Script`` (in order; ``default`` when the queue is empty) that says what to answer: text
chunks, tool calls, delays, an HTTP error, an error event mid-stream, or an abrupt close.
Every request is recorded with its parsed JSON body and two events: ``finished`` (the fake is
done answering it) and ``disconnected`` (the client hung up before the answer was complete).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FakeToolCall:
    """A tool call the fake model makes; its JSON arguments are streamed in ``pieces``."""

    name: str
    arguments: Mapping[str, Any]
    id: str | None = None
    pieces: int = 3


@dataclass(frozen=True, slots=True)
class Script:
    """What the fake answers to one model call."""

    text: Sequence[str] = ()
    tool_calls: Sequence[FakeToolCall] = ()
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    status: int | None = None  # answer this HTTP error (JSON body) instead of streaming
    error_type: str | None = None  # vendor error type; default derived from the status
    error_code: str | None = None  # OpenAI ``code`` / Anthropic ``error.details.error_code``
    error_message: str | None = None
    retry_after: float | None = None  # ``retry-after`` header of an error answer
    disconnect_after: int | None = None  # close the connection after this many content chunks
    stream_error: str | None = None  # an error of this type in the stream, after the content
    finish_reason: str | None = None  # vendor stop/finish reason; default from the content
    input_tokens: int = 12
    output_tokens: int | None = None  # default: one per content chunk

    @classmethod
    def error(cls, status: int, **kwargs: Any) -> Script:
        return cls(status=status, **kwargs)


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    script: Script | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)

    async def wait_finished(self, within: float = 5.0) -> bool:
        return await asyncio.to_thread(self.finished.wait, within)

    async def wait_disconnected(self, within: float = 5.0) -> bool:
        """Whether the client hung up within ``within`` seconds (waits on a thread event)."""
        return await asyncio.to_thread(self.disconnected.wait, within)


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes of a streamed answer; ``content`` frames are the delayed, counted ones."""

    data: bytes
    content: bool = False


def split_text(text: str, pieces: int) -> list[str]:
    """``text`` cut into ``pieces`` non-empty parts (fewer if it is short)."""
    pieces = max(1, min(pieces, len(text)))
    size = -(-len(text) // pieces)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class _DropAborts(logging.Filter):
    """Silences uvicorn's complaint about the connections a script closes on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def _quiet_uvicorn() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropAborts) for f in logger.filters):
        logger.addFilter(_DropAborts())


class _Uvicorn(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)
        self.ready.set()


class ScriptedFake:
    """Base of the vendor fakes: request recording, script queue, streaming, lifecycle."""

    def __init__(self, scripts: Iterable[Script] = (), *, default: Script | None = None) -> None:
        self.default = default
        self._scripts: list[Script] = list(scripts)
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._stopping = False
        self.port = 0

    # -- scripting and inspection (test side) --------------------------------------------

    def push(self, *scripts: Script) -> None:
        with self._changed:
            self._scripts.extend(scripts)

    def reset(self) -> None:
        with self._changed:
            self._scripts.clear()
            self._requests.clear()
            self.default = None

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    def calls(self, path_suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    async def wait_for_request(self, n: int = 1, within: float = 5.0) -> RecordedRequest:
        """The ``n``-th request (1-based), once it has arrived."""

        def wait() -> RecordedRequest:
            with self._changed:
                if not self._changed.wait_for(lambda: len(self._requests) >= n, within):
                    raise TimeoutError(f"fake saw {len(self._requests)} requests, wanted {n}")
                return self._requests[n - 1]

        return await asyncio.to_thread(wait)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        _quiet_uvicorn()
        self._stopping = False
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it every keep-alive request stalls ~40 ms (delayed ACK).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._socket, self.port = sock, sock.getsockname()[1]
        config = uvicorn.Config(self, lifespan="off", log_config=None, access_log=False, ws="none")
        server = self._server = _Uvicorn(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        if not server.ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        if server.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                server.loop.call_soon_threadsafe(self._cancel_all)
        server.should_exit = True
        thread.join(10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def _cancel_all(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- ASGI (server side) -----------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(scope, receive, send)
        except asyncio.CancelledError:
            if not self._stopping:
                raise  # only stop() may end a request quietly (the connection is dropped)
        finally:
            self._tasks.discard(task)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        record = RecordedRequest(scope["method"], scope["path"], headers, body)
        with self._changed:
            self._requests.append(record)
            self._changed.notify_all()
        try:
            await self.route(record, receive, send)
        finally:
            record.finished.set()

    def next_script(self, record: RecordedRequest) -> Script | None:
        with self._changed:
            script = self._scripts.pop(0) if self._scripts else self.default
        record.script = script
        return script

    async def route(self, record: RecordedRequest, receive: Receive, send: Send) -> None:
        raise NotImplementedError

    async def send_json(
        self, send: Send, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": data, "more_body": False})

    async def stream(
        self,
        record: RecordedRequest,
        script: Script,
        headers: Mapping[str, str],
        frames: Sequence[Frame],
        receive: Receive,
        send: Send,
    ) -> None:
        """Sends ``frames`` as a chunked 200 answer, honouring delays and ``disconnect_after``,
        while watching for the client going away."""
        writer = asyncio.ensure_future(self._write(script, headers, frames, send))
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait({writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not writer.done():
                record.disconnected.set()
                writer.cancel()
            watcher.cancel()
            await asyncio.gather(writer, watcher, return_exceptions=True)
        if not writer.cancelled() and (error := writer.exception()) is not None:
            raise error

    async def _write(
        self, script: Script, headers: Mapping[str, str], frames: Sequence[Frame], send: Send
    ) -> None:
        head = [(b"content-type", b"text/event-stream; charset=utf-8")]
        head += [(b"cache-control", b"no-cache")]
        head += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        sent = 0
        for frame in frames:
            if frame.content:
                if script.disconnect_after is not None and sent >= script.disconnect_after:
                    return  # returning mid-body makes uvicorn drop the connection
                delay = script.first_token_delay if sent == 0 else script.token_delay
                if delay > 0:
                    await asyncio.sleep(delay)
                sent += 1
            await send({"type": "http.response.body", "body": frame.data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
