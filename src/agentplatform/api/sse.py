"""Server-Sent Events framing for run events, with keep-alive comments while idle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from agentplatform.domain.events import RunEvent

KEEPALIVE_SECONDS = 15.0
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def encode(event: RunEvent) -> bytes:
    return f"id: {event.seq}\nevent: {event.type}\ndata: {event.model_dump_json()}\n\n".encode()


async def _framed(events: AsyncIterator[RunEvent], keepalive: float) -> AsyncIterator[bytes]:
    iterator = aiter(events)
    pending: asyncio.Task[RunEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=keepalive)
            if not done:
                yield b": keep-alive\n\n"
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield encode(event)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending


def event_stream(
    events: AsyncIterator[RunEvent],
    *,
    first: bytes = b"",
    keepalive: float = KEEPALIVE_SECONDS,
) -> StreamingResponse:
    """A ``text/event-stream`` response; ``first`` is sent before the events (e.g. an ack)."""

    async def body() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in _framed(events, keepalive):
            yield chunk

    return StreamingResponse(body(), media_type="text/event-stream", headers=HEADERS)
