"""Rate limits: named budgets counted in moving windows (the ``limits`` library).

One ``RateLimiter`` per app holds every budget (``Budget``: guest sessions per address, API
requests per address and per user, chat messages per user) and the concurrency caps
(``Slots``). Its counters live in this process's memory, or in Redis when the app is given a
Redis URL, so that N replicas together allow the limit, not N times it.

``hit`` answers with a ``Usage``: the numbers behind the ``RateLimit-*`` and ``Retry-After``
headers. A budget given as several rates (``"10/minute;200/day"``) must pass them all.
Limits protect the service; they are not worth an outage. When Redis cannot be reached
(or does not answer within ``REDIS_TIMEOUT``), requests pass (fail open), Redis is left alone
for ``STORE_BACKOFF`` seconds so requests do not each wait on it, and a warning is logged at
most every ``WARN_EVERY`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from agentplatform.security.slots import MemorySlots, RedisSlots, Slots
from agentplatform.security.windows import MemoryWindows

log = logging.getLogger("agentplatform.ratelimit")

KEY_PREFIX = "agentplatform:limits"
WARN_EVERY = 30.0
STORE_BACKOFF = 5.0
REDIS_TIMEOUT = 0.5  # seconds; a hung Redis must not hang requests (they pass instead)


class Budget(StrEnum):
    """A rate budget; its value names it in metrics and error details, and keys its counters."""

    GUEST_SESSIONS = "guest_ip"  # POST /api/auth/guest, per client address
    IP = "api_ip"  # API requests per client address
    USER = "api_user"  # API requests per user
    CHAT = "chat_user"  # chat messages (turns) per user


def parse_rates(value: str) -> tuple[RateLimitItem, ...]:
    """``"600/minute"`` or ``"10/second;500/hour"``; raises ``ValueError`` when malformed."""
    items = tuple(parse_many(value))
    if not items or any(item.amount < 1 for item in items):
        raise ValueError(f"not a rate limit: {value!r} (use e.g. '600/minute')")
    return items


@dataclass(frozen=True, slots=True)
class Usage:
    """Where a key stands in one budget after a request was counted (or refused)."""

    limit: int
    remaining: int
    reset_after: float  # seconds until a spent unit is given back
    allowed: bool = True

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_after))

    def headers(self) -> dict[str, str]:
        """The ``RateLimit-*`` headers (``Retry-After`` is the error handler's)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(max(0, math.ceil(self.reset_after))),
        }

    def tighter(self, other: Usage | None) -> Usage:
        """Of two usages, the one a client should watch: refusals first, then least left."""
        if other is None:
            return self
        mine = (self.allowed, self.remaining, -self.reset_after)
        theirs = (other.allowed, other.remaining, -other.reset_after)
        return self if mine <= theirs else other


class RateLimiter:
    """Every budget and concurrency cap of one app; build with ``in_memory`` or ``redis``."""

    def __init__(
        self,
        storage: Storage,
        budgets: Mapping[Budget, Sequence[RateLimitItem]],
        slots: Slots,
        *,
        enabled: bool = True,
        client: Redis | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.enabled = enabled
        self.clock = clock
        self.budgets = {budget: tuple(items) for budget, items in budgets.items() if items}
        self.slots = slots
        self._storage = storage
        self._windows = MovingWindowRateLimiter(storage)
        self._client = client
        self._warned_at = -math.inf
        self._down_until = -math.inf

    @classmethod
    def in_memory(
        cls,
        budgets: Mapping[Budget, Sequence[RateLimitItem]],
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> RateLimiter:
        """Counters in this process (one replica); ``clock`` lets tests move time."""
        windows = MemoryWindows(clock)
        return cls(windows, budgets, MemorySlots(), enabled=enabled, clock=clock)

    @classmethod
    def redis(
        cls, url: str, budgets: Mapping[Budget, Sequence[RateLimitItem]], *, enabled: bool = True
    ) -> RateLimiter:
        """Counters in the Redis at ``url`` (``redis://``, ``rediss://``), shared by replicas."""
        client: Redis = Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        # One connection pool for the windows (limits' Lua scripts) and the slots.
        options: dict[str, Any] = {"connection_pool": client.connection_pool}
        storage = RedisStorage(
            "async+" + url,
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=KEY_PREFIX,
            **options,
        )
        slots = RedisSlots(client, prefix=KEY_PREFIX)
        return cls(storage, budgets, slots, enabled=enabled, client=client)

    async def hit(self, budget: Budget, key: str, cost: int = 1) -> Usage | None:
        """Count one request of ``key`` against ``budget``; None when that is not limited."""
        items = self.budgets.get(budget)
        if not self.enabled or not items or self._store_down():
            return None
        try:
            return await self._hit(items, budget.value, key, cost)
        except (StorageError, RedisError, OSError) as exc:
            self._storage_failed(exc)
            return None

    async def _hit(self, items: Sequence[RateLimitItem], budget: str, key: str, cost: int) -> Usage:
        tightest: Usage | None = None
        for item in items:
            allowed = await self._windows.hit(item, budget, key, cost=cost)
            reset_at, remaining = await self._windows.get_window_stats(item, budget, key)
            usage = Usage(
                limit=item.amount,
                remaining=remaining,
                reset_after=max(0.0, reset_at - self.clock()),
                allowed=allowed,
            )
            if not allowed:
                return usage
            tightest = usage.tighter(tightest)
        assert tightest is not None
        return tightest

    @contextlib.asynccontextmanager
    async def slot(self, kind: str, key: str, holder: str, limit: int) -> AsyncIterator[bool]:
        """Hold one of ``limit`` slots of ``kind`` for ``key`` while inside; yields whether
        it was granted (always True when limits are off or the store is unreachable)."""
        if not self.enabled or limit <= 0 or self._store_down():
            yield True
            return
        name = f"{kind}:{key}"
        try:
            granted = await self.slots.acquire(name, holder, limit)
        except (RedisError, OSError) as exc:
            self._storage_failed(exc)
            yield True
            return
        if not granted:
            yield False
            return
        keeper = asyncio.create_task(self._keep(name, holder)) if self.slots.lease_seconds else None
        try:
            yield True
        finally:
            if keeper is not None:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
            try:
                await self.slots.release(name, holder)
            except (RedisError, OSError) as exc:  # the lease runs out by itself
                self._storage_failed(exc)

    async def _keep(self, name: str, holder: str) -> None:
        assert self.slots.lease_seconds is not None
        while True:
            await asyncio.sleep(self.slots.lease_seconds / 3)
            try:
                await self.slots.refresh(name, holder)
            except (RedisError, OSError) as exc:
                self._storage_failed(exc)

    def _store_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _storage_failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._down_until = now + STORE_BACKOFF
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("rate-limit store unavailable (%s); letting requests pass", exc)

    async def reset(self) -> None:
        """Forget every count (tests and operators' tooling; not used by requests)."""
        await self._storage.reset()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
