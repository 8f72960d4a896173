"""The event bus: run events with a per-run ``seq``, replayable from any point.

Contract (``EventBus``):
- ``open(run_id, owner)``: announce a run (and whose it is) before its first event, so
  subscribers wait for it; ``owner(run_id)`` answers without a database read.
- ``publish(event)``: append an event; ``seq`` values of one run are 1, 2, 3, … in order.
- ``subscribe(run_id, after_seq)``: every event with ``seq > after_seq``, the stored ones
  first, then live ones as they come, without gaps or duplicates; the iterator ends after the
  run's terminal event. A run the bus does not know yields nothing.
- ``known(run_id)``: whether the bus still holds the run's events.

``MemoryBus`` keeps events in this process (one replica); finished runs are kept for
``retention`` seconds so late reconnects can still replay them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from agentplatform.domain.events import RunEvent, is_terminal


class EventBus(Protocol):
    async def open(self, run_id: str, owner: str) -> None: ...

    async def owner(self, run_id: str) -> str | None: ...

    async def publish(self, event: RunEvent) -> None: ...

    def subscribe(self, run_id: str, after_seq: int = 0) -> AsyncIterator[RunEvent]: ...

    async def known(self, run_id: str) -> bool: ...

    async def aclose(self) -> None: ...


@dataclass
class _RunLog:
    owner: str | None = None
    events: list[RunEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    finished_at: float | None = None


class MemoryBus:
    """In-process bus for a single replica."""

    def __init__(
        self, retention: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._runs: dict[str, _RunLog] = {}
        self._retention = retention
        self._clock = clock

    async def open(self, run_id: str, owner: str) -> None:
        if run_id not in self._runs:
            self._evict()
            self._runs[run_id] = _RunLog(owner=owner)

    async def owner(self, run_id: str) -> str | None:
        log = self._runs.get(run_id)
        return log.owner if log is not None else None

    async def publish(self, event: RunEvent) -> None:
        log = self._runs.get(event.run_id)
        if log is None:
            self._evict()
            log = self._runs[event.run_id] = _RunLog()
        if log.finished_at is not None:
            raise RuntimeError(f"run {event.run_id} already ended")
        expected = len(log.events) + 1
        if event.seq != expected:
            raise ValueError(f"run {event.run_id}: seq {event.seq}, expected {expected}")
        log.events.append(event)
        if is_terminal(event):
            log.finished_at = self._clock()
        log.changed.set()
        log.changed = asyncio.Event()

    async def subscribe(self, run_id: str, after_seq: int = 0) -> AsyncIterator[RunEvent]:
        log = self._runs.get(run_id)
        if log is None:
            return
        position = max(after_seq, 0)
        while True:
            waiter = log.changed
            while position < len(log.events):
                event = log.events[position]
                position += 1
                yield event
                if is_terminal(event):
                    return
            if log.finished_at is not None:
                return
            await waiter.wait()

    async def known(self, run_id: str) -> bool:
        return run_id in self._runs

    async def aclose(self) -> None:
        self._runs.clear()

    def _evict(self) -> None:
        horizon = self._clock() - self._retention
        expired = [
            run_id
            for run_id, log in self._runs.items()
            if log.finished_at is not None and log.finished_at < horizon
        ]
        for run_id in expired:
            del self._runs[run_id]
