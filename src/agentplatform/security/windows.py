"""Moving windows in this process's memory: a ``limits`` storage for one replica.

Why not ``limits.aio.storage.MemoryStorage``: after *every* hit it starts a task that walks
*every* key, each on a worker thread. With many client addresses (budget keys live as long
as their window: an hour for guest sessions) that sweep never ends; measured at 10,000 keys
and 500 requests/s it took about two thirds of a CPU. Here a key is pruned when it is
touched, and idle keys are swept inline at most every ``SWEEP_EVERY`` seconds, an O(keys)
dictionary walk with no threads. Time comes from ``clock``, so tests can move it.

Only the moving-window half of the storage contract is served (``MovingWindowRateLimiter``
is the one strategy the platform uses); the fixed-window methods say so.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from limits.aio.storage import MovingWindowSupport, Storage

SWEEP_EVERY = 10.0


@dataclass(slots=True)
class _Window:
    expiry: float
    hits: deque[float] = field(default_factory=deque)  # oldest first

    def prune(self, now: float) -> None:
        cutoff = now - self.expiry
        while self.hits and self.hits[0] <= cutoff:
            self.hits.popleft()


class MemoryWindows(Storage, MovingWindowSupport):
    """Per-key hit times, newest last; ``clock`` returns seconds (``time.time`` by default)."""

    STORAGE_SCHEME = None  # built directly, never from a URI

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._swept = clock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = self.clock()
        self._sweep(now)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(float(expiry))
        window.prune(now)
        if len(window.hits) + amount > limit:
            return False
        window.hits.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(time of the oldest hit still in the window, hits in the window)."""
        now = self.clock()
        window = self._windows.get(key)
        if window is None:
            return now, 0
        window.prune(now)
        if not window.hits:
            return now, 0
        return window.hits[0], len(window.hits)

    def _sweep(self, now: float) -> None:
        if now - self._swept < SWEEP_EVERY:
            return
        self._swept = now
        idle = [k for k, w in self._windows.items() if not w.hits or w.hits[-1] <= now - w.expiry]
        for key in idle:
            del self._windows[key]

    def __len__(self) -> int:
        return len(self._windows)

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    async def reset(self) -> int | None:
        count = len(self._windows)
        self._windows.clear()
        return count

    async def check(self) -> bool:
        return True

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("MemoryWindows serves moving windows only")

    async def get(self, key: str) -> int:
        raise NotImplementedError("MemoryWindows serves moving windows only")

    async def get_expiry(self, key: str) -> float:
        raise NotImplementedError("MemoryWindows serves moving windows only")
