"""Concurrency caps: at most N things held at once per key (e.g. open WebSockets per user).

A ``Slots`` store hands out named slots under a key, up to a limit. Two stores speak the
same contract: ``MemorySlots`` for one process, ``RedisSlots`` when replicas share Redis.
In Redis every slot is a *lease* (a sorted-set member scored by its expiry, judged by the
Redis server's clock): its holder refreshes it while alive, and a replica that dies without
releasing its slots gives them back when the leases run out instead of locking users out.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

DEFAULT_LEASE_SECONDS = 60.0


class Slots(Protocol):
    """Where held slots are counted."""

    lease_seconds: float | None  # how often a holder must ``refresh``; None: never

    async def acquire(self, key: str, holder: str, limit: int) -> bool:
        """Take a slot for ``holder`` unless ``limit`` are held; re-acquiring is a no-op."""
        ...

    async def refresh(self, key: str, holder: str) -> None: ...

    async def release(self, key: str, holder: str) -> None: ...

    async def held(self, key: str) -> int: ...


class MemorySlots:
    """Slots in this process's memory: exact, and gone with the process."""

    lease_seconds: float | None = None

    def __init__(self) -> None:
        self._held: dict[str, set[str]] = {}

    async def acquire(self, key: str, holder: str, limit: int) -> bool:
        holders = self._held.setdefault(key, set())
        if holder not in holders and len(holders) >= limit:
            return False
        holders.add(holder)
        return True

    async def refresh(self, key: str, holder: str) -> None:
        return None

    async def release(self, key: str, holder: str) -> None:
        holders = self._held.get(key)
        if holders is not None:
            holders.discard(holder)
            if not holders:
                del self._held[key]

    async def held(self, key: str) -> int:
        return len(self._held.get(key, ()))


# KEYS[1]: the set; ARGV: holder, limit, lease in ms. Returns 1 when the slot is held.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
"""
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
"""
_HELD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


class RedisSlots:
    """Slots shared by every replica using the same Redis."""

    def __init__(
        self, client: Redis, *, prefix: str, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self._client = client
        self._prefix = prefix
        self.lease_seconds: float | None = lease_seconds
        self._lease_ms = int(lease_seconds * 1000)
        self._acquire = client.register_script(_ACQUIRE)
        self._refresh = client.register_script(_REFRESH)
        self._held = client.register_script(_HELD)

    def _key(self, key: str) -> str:
        return f"{self._prefix}:slots:{key}"

    async def acquire(self, key: str, holder: str, limit: int) -> bool:
        result = await self._acquire(keys=[self._key(key)], args=[holder, limit, self._lease_ms])
        return bool(result)

    async def refresh(self, key: str, holder: str) -> None:
        await self._refresh(keys=[self._key(key)], args=[holder, self._lease_ms])

    async def release(self, key: str, holder: str) -> None:
        await self._client.zrem(self._key(key), holder)

    async def held(self, key: str) -> int:
        return int(await self._held(keys=[self._key(key)]))
