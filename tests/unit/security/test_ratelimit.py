"""The limiter's parts: rate strings, usage and headers, moving windows, slots, failing open."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime

import pytest

from agentplatform.security.quotas import GuestQuotas, seconds_to_midnight, spent_turn
from agentplatform.security.ratelimit import (
    REDIS_TIMEOUT,
    Budget,
    RateLimiter,
    Usage,
    parse_rates,
)
from agentplatform.security.slots import MemorySlots
from agentplatform.security.windows import SWEEP_EVERY, MemoryWindows


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_parse_rates() -> None:
    assert [item.amount for item in parse_rates("10/second;500/hour")] == [10, 500]
    for bad in ("", "lots", "10", "0/minute"):
        with pytest.raises(ValueError):
            parse_rates(bad)


def test_usage_headers_and_the_tighter_of_two() -> None:
    loose = Usage(limit=100, remaining=90, reset_after=30.2)
    tight = Usage(limit=10, remaining=1, reset_after=5.0)
    refused = Usage(limit=1000, remaining=500, reset_after=0.1, allowed=False)
    assert loose.headers() == {
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "90",
        "RateLimit-Reset": "31",
    }
    assert tight.tighter(loose) is tight and loose.tighter(tight) is tight
    assert refused.tighter(tight) is refused and tight.tighter(refused) is refused
    assert tight.tighter(None) is tight
    assert refused.retry_after == 1


async def test_moving_window_counts_each_key_alone() -> None:
    limiter = RateLimiter.in_memory({Budget.USER: parse_rates("2/minute")})
    try:
        first, second, third = [await limiter.hit(Budget.USER, "a") for _ in range(3)]
        assert first is not None and first.allowed and first.remaining == 1
        assert second is not None and second.allowed and second.remaining == 0
        assert third is not None and not third.allowed and 55 < third.reset_after <= 60
        other = await limiter.hit(Budget.USER, "b")
        assert other is not None and other.allowed
        assert await limiter.hit(Budget.CHAT, "a") is None  # a budget not configured
    finally:
        await limiter.aclose()


async def test_the_window_moves_with_the_clock() -> None:
    clock = Clock()
    budgets = {budget: parse_rates("2/minute") for budget in Budget}
    limiter = RateLimiter.in_memory(budgets, clock=clock)
    for budget in Budget:  # every budget: trips, then frees one unit per expired hit
        start = clock.now
        assert (await limiter.hit(budget, "k")) == Usage(2, 1, 60.0)
        clock.now = start + 30
        assert (await limiter.hit(budget, "k")) == Usage(2, 0, 30.0)
        clock.now = start + 40
        refused = await limiter.hit(budget, "k")
        assert refused == Usage(2, 0, 20.0, allowed=False)
        assert refused.retry_after == 20
        clock.now = start + 60.5  # the first hit has left the window
        assert (await limiter.hit(budget, "k")) == Usage(2, 0, 29.5)
        clock.now = start + 70
        assert (await limiter.hit(budget, "k")) == Usage(2, 0, 20.0, allowed=False)
        clock.now = start + 200  # everything has left the window
        assert (await limiter.hit(budget, "k")) == Usage(2, 1, 60.0)
        clock.now += 1000
    await limiter.aclose()


async def test_idle_keys_are_swept() -> None:
    clock = Clock()
    windows = MemoryWindows(clock)
    for key in ("a", "b", "c"):
        assert await windows.acquire_entry(key, 5, 60)
    clock.now += 61 + SWEEP_EVERY
    assert await windows.acquire_entry("d", 5, 60)
    assert len(windows) == 1
    assert await windows.get_moving_window("a", 5, 60) == (clock.now, 0)


async def test_every_rate_of_a_budget_must_pass() -> None:
    limiter = RateLimiter.in_memory({Budget.IP: parse_rates("5/second;2/hour")})
    try:
        results = [await limiter.hit(Budget.IP, "k") for _ in range(3)]
        assert [r.allowed for r in results if r] == [True, True, False]
        assert results[2] is not None and results[2].limit == 2
    finally:
        await limiter.aclose()


async def test_disabled_limiter_counts_nothing() -> None:
    limiter = RateLimiter.in_memory({Budget.IP: parse_rates("1/hour")}, enabled=False)
    assert await limiter.hit(Budget.IP, "k") is None
    async with limiter.slot("ws", "u", "c1", 1) as one, limiter.slot("ws", "u", "c2", 1) as two:
        assert one and two
    await limiter.aclose()


async def test_memory_slots() -> None:
    slots = MemorySlots()
    assert await slots.acquire("k", "a", 2) and await slots.acquire("k", "b", 2)
    assert not await slots.acquire("k", "c", 2)
    assert await slots.acquire("k", "a", 2)  # holding it already
    await slots.release("k", "a")
    assert await slots.held("k") == 1
    assert await slots.acquire("k", "c", 2)


async def test_unreachable_redis_lets_requests_pass(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter.redis("redis://127.0.0.1:1/0", {Budget.IP: parse_rates("1/hour")})
    try:
        with caplog.at_level(logging.WARNING, "agentplatform.ratelimit"):
            assert await limiter.hit(Budget.IP, "k") is None
            assert await limiter.hit(Budget.IP, "k") is None
            async with limiter.slot("ws", "u", "c", 1) as granted:
                assert granted
        warnings = [r for r in caplog.records if "rate-limit store unavailable" in r.message]
        assert len(warnings) == 1  # not one per request
    finally:
        await limiter.aclose()


async def test_a_hung_redis_does_not_hang_requests() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        limiter = RateLimiter.redis(url, {Budget.IP: parse_rates("1/hour")})
        try:
            started = time.monotonic()
            assert await limiter.hit(Budget.IP, "k") is None
            assert time.monotonic() - started < 5 * REDIS_TIMEOUT
        finally:
            await limiter.aclose()


def test_daily_quotas() -> None:
    quotas = GuestQuotas(messages_per_day=3, tokens_per_day=100)
    noon = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert seconds_to_midnight(noon) == 12 * 3600
    assert spent_turn(quotas, messages=2, tokens=99, now=noon) is None
    spent = spent_turn(quotas, messages=3, tokens=0, now=noon)
    assert spent is not None and spent.name == "quota_messages"
    assert spent.usage.retry_after == 12 * 3600
    spent = spent_turn(quotas, messages=0, tokens=100, now=noon)
    assert spent is not None and spent.name == "quota_tokens"
    assert spent_turn(GuestQuotas(), messages=10**6, tokens=10**9, now=noon) is None
