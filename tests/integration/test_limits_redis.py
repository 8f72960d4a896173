"""Limits shared through a real Redis: N replicas together allow the limit, not N times it.

A throwaway ``redis-server`` is started for the module (missing locally: skipped; under
``CI=true``: a failure). Two apps on one database and one Redis stand in for two replicas.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agentplatform.security.slots import RedisSlots
from agentplatform.store.db import Database
from agentplatform.store.migrate import upgrade
from tests.conftest import need_service, provider_settings
from tests.fakes import FakeAnthropic, FakeOpenAI
from tests.support.chat import next_frame, token_of
from tests.support.limits import Apps, app_factory, serve
from tests.support.services import RedisServer, missing_reason


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    need_service("Redis", missing_reason("redis"))
    server = RedisServer.start(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    client: Redis = Redis.from_url(redis_server.url)
    try:
        await client.flushdb()  # each test starts with no counts
    finally:
        await client.aclose()
    yield redis_server.url


@pytest.fixture
async def apps(
    redis_url: str,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
) -> AsyncIterator[Apps]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'replicas.sqlite'}"
    db = Database(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    base = provider_settings(fake_anthropic, fake_openai, tmp_path / "models")
    async with app_factory({"database_url": url, "redis_url": redis_url, **base}) as factory:
        yield factory


async def test_two_replicas_together_allow_the_limit(apps: Apps) -> None:
    one = await apps.make(rate_limit_ip="5/minute", rate_limit_guest_sessions="2/minute")
    two = await apps.make(rate_limit_ip="5/minute", rate_limit_guest_sessions="2/minute")
    codes = []
    for i in range(10):  # a load balancer alternating between the replicas
        client = apps.client(one if i % 2 == 0 else two, "192.0.2.50")
        codes.append((await client.get("/api/auth/session")).status_code)
    assert codes == [401] * 5 + [429] * 5
    created = [
        (await apps.client(app, "192.0.2.51").post("/api/auth/guest")).status_code
        for app in (one, two, one, two)
    ]
    assert created == [201, 201, 429, 429]


async def test_per_user_budget_is_shared_too(apps: Apps) -> None:
    one = await apps.make(rate_limit_user="3/minute")
    two = await apps.make(rate_limit_user="3/minute")
    guest = await apps.guest(one)
    same_user_on_two = apps.client(two)
    same_user_on_two.headers["Authorization"] = guest.headers["Authorization"]
    codes = [
        (await (guest if i % 2 == 0 else same_user_on_two).get("/api/agents")).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 200, 429]


async def test_websocket_cap_spans_replicas(apps: Apps) -> None:
    one = await apps.make(ws_connections_per_user=1)
    two = await apps.make(ws_connections_per_user=1)
    guest = await apps.guest(one)
    headers = {"Authorization": f"Bearer {token_of(guest)}"}
    async with serve(one) as live_one, serve(two) as live_two:
        async with connect(f"ws://{live_one}/ws", additional_headers=headers) as first:
            assert (await next_frame(first))["type"] == "welcome"
            async with connect(f"ws://{live_two}/ws", additional_headers=headers) as second:
                refused = await next_frame(second)
                assert refused["code"] == "rate_limited"
                with pytest.raises(ConnectionClosed):
                    await second.recv()
        for _ in range(100):  # the first replica notices the close a moment later
            async with connect(f"ws://{live_two}/ws", additional_headers=headers) as again:
                if (await next_frame(again))["type"] == "welcome":
                    break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the slot was never given back")


async def test_a_dead_replicas_slots_run_out(redis_url: str) -> None:
    client: Redis = Redis.from_url(redis_url)
    try:
        slots = RedisSlots(client, prefix="test", lease_seconds=0.3)
        assert await slots.acquire("ws:u", "crashed-replica", 1)  # never released
        assert not await slots.acquire("ws:u", "new", 1)
        await asyncio.sleep(0.4)  # the lease itself is what is tested
        assert await slots.acquire("ws:u", "new", 1)
        assert await slots.held("ws:u") == 1
    finally:
        await client.aclose()
