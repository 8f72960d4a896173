"""Cancel signals: ask a run to stop, wherever it runs.

``CancelSignals.request(run_id)`` asks; ``watch(run_id)`` gives an ``asyncio.Event`` the run
awaits, set when a cancel was requested (now or later); ``forget(run_id)`` drops it.
``MemoryCancels`` works within one process.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class CancelSignals(Protocol):
    async def request(self, run_id: str) -> None: ...

    def watch(self, run_id: str) -> asyncio.Event: ...

    def forget(self, run_id: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryCancels:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    async def request(self, run_id: str) -> None:
        event = self._events.get(run_id)
        if event is not None:
            event.set()

    def watch(self, run_id: str) -> asyncio.Event:
        return self._events.setdefault(run_id, asyncio.Event())

    def forget(self, run_id: str) -> None:
        self._events.pop(run_id, None)

    async def aclose(self) -> None:
        self._events.clear()
