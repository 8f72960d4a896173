"""Rate limits over HTTP and WebSocket: each budget trips with 429 + headers, and only its own.

Budgets: guest sessions per address, API requests per address and per user, chat messages per
user, WebSocket connections per user. The client address is the socket's unless the peer is a
trusted proxy. Each test builds its own app with small limits (see ``tests/support/limits``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agentplatform.store.db import Database
from agentplatform.store.migrate import upgrade
from tests.conftest import provider_settings
from tests.fakes import FakeAnthropic, FakeOpenAI
from tests.support.chat import make_agent, next_frame, parse_sse, token_of, user_id_of
from tests.support.limits import Apps, app_factory, model_calls, serve, services_of

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


@pytest.fixture(scope="module")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("limits") / "limits.sqlite"
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    return url


@pytest.fixture
async def apps(
    sqlite_url: str,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
) -> AsyncIterator[Apps]:
    base = provider_settings(fake_anthropic, fake_openai, tmp_path / "models")
    async with app_factory({"database_url": sqlite_url, **base}) as factory:
        yield factory


def assert_refused(response: httpx.Response, budget: str) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"]["budget"] == budget
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) >= 1


async def test_address_budget_trips_with_headers_and_spares_others(apps: Apps) -> None:
    app = await apps.make(rate_limit_ip="3/minute")
    flooder, other = apps.client(app, "192.0.2.1"), apps.client(app, "192.0.2.2")
    seen = []
    for _ in range(3):
        response = await flooder.get("/api/auth/session")  # 401, and still counted
        assert response.status_code == 401
        assert response.headers["RateLimit-Limit"] == "3"
        seen.append(response.headers["RateLimit-Remaining"])
    assert seen == ["2", "1", "0"]
    refused = await flooder.get("/api/agents")
    assert_refused(refused, "api_ip")
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["X-Content-Type-Options"] == "nosniff"  # still a proper response
    # Probes and static files are not counted; another address has its own budget.
    for path in ("/health", "/ready", "/static/app.js"):
        response = await flooder.get(path)
        assert response.status_code == 200, path
        assert "RateLimit-Limit" not in response.headers
    assert (await other.get("/api/auth/session")).status_code == 401


async def test_guest_sessions_per_address(apps: Apps) -> None:
    app = await apps.make(rate_limit_guest_sessions="2/hour")
    one, two = apps.client(app, "192.0.2.3"), apps.client(app, "192.0.2.4")
    made = [await one.post("/api/auth/guest") for _ in range(2)]
    assert [r.status_code for r in made] == [201, 201]
    refused = await one.post("/api/auth/guest")
    assert_refused(refused, "guest_ip")
    assert int(refused.headers["Retry-After"]) > 60  # an hour's window
    session = {"Authorization": f"Bearer {made[0].json()['token']}"}
    assert (await one.get("/api/auth/session", headers=session)).status_code == 200
    assert (await two.post("/api/auth/guest")).status_code == 201


async def test_user_budget_is_per_user(apps: Apps) -> None:
    app = await apps.make(rate_limit_user="3/minute")
    alice, bob = await apps.guest(app), await apps.guest(app)  # same address, different users
    for _ in range(3):
        assert (await alice.get("/api/agents")).status_code == 200
    assert_refused(await alice.get("/api/agents"), "api_user")
    assert_refused(await alice.get("/api/auth/session"), "api_user")
    ok = await bob.get("/api/agents")
    assert ok.status_code == 200
    assert ok.headers["RateLimit-Remaining"] == "2"


async def test_rotating_forwarded_for_gains_nothing(apps: Apps) -> None:
    app = await apps.make(rate_limit_ip="3/minute")  # no trusted proxies
    attacker = apps.client(app, "198.51.100.9")
    codes = []
    for i in range(6):
        spoofed = {"X-Forwarded-For": f"10.0.0.{i}, 203.0.113.{i}"}
        codes.append((await attacker.get("/api/auth/session", headers=spoofed)).status_code)
    assert codes == [401, 401, 401, 429, 429, 429]


async def test_trusted_proxy_hops_are_honoured(apps: Apps) -> None:
    app = await apps.make(rate_limit_ip="2/minute", trusted_proxies=["10.0.0.0/8"])
    proxy = apps.client(app, "10.1.2.3")

    async def via(chain: str) -> int:
        response = await proxy.get("/api/auth/session", headers={"X-Forwarded-For": chain})
        return response.status_code

    # The right-most untrusted hop is the client; what it wrote to the left is ignored.
    assert await via("203.0.113.5") == 401
    assert await via("1.1.1.1, 203.0.113.5") == 401
    assert await via("2.2.2.2, 203.0.113.5, 10.9.9.9") == 429  # via a second proxy
    assert await via("203.0.113.6") == 401  # a different client, its own budget
    # A request with no header is the proxy's own, counted under its address.
    assert (await proxy.get("/api/auth/session")).status_code == 401


async def test_budgets_come_back_after_their_window(apps: Apps) -> None:
    app = await apps.make(rate_limit_ip="2/second")
    client = apps.client(app, "192.0.2.5")
    codes = [(await client.get("/api/auth/session")).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    await asyncio.sleep(1.1)  # the window itself is what is tested
    assert (await client.get("/api/auth/session")).status_code == 401


def open_ws(live: str, client: httpx.AsyncClient) -> Any:
    headers = {"Authorization": f"Bearer {token_of(client)}"}
    return connect(f"ws://{live}/ws", additional_headers=headers, open_timeout=5)


async def test_chat_budget_refuses_before_the_model(
    apps: Apps, fake_anthropic: FakeAnthropic
) -> None:
    app = await apps.make(rate_limit_chat="2/minute")
    guest = await apps.guest(app)
    agent = await make_agent(guest)
    chat = f"/api/agents/{agent['id']}/chat"
    for n in range(2):
        reply = await guest.post(chat, json={"content": f"{n}"})
        assert reply.status_code == 200
        assert parse_sse(reply.text)[-1][0] == "done"
    assert_refused(await guest.post(chat, json={"content": "3"}), "chat_user")
    task = await guest.post(f"/api/agents/{agent['id']}/runs", json={"input": "x"})
    assert_refused(task, "chat_user")
    assert (await guest.get("/api/agents")).status_code == 200  # other calls unaffected
    async with serve(app) as live, open_ws(live, guest) as ws:
        assert (await next_frame(ws))["type"] == "welcome"
        await ws.send(json.dumps({"type": "chat", "agent_id": agent["id"], "content": "4"}))
        error = await next_frame(ws)
        assert error["type"] == "error" and error["code"] == "rate_limited"
        assert error["retry_after"] >= 1
        await ws.send(json.dumps({"type": "ping"}))
        assert (await next_frame(ws))["type"] == "pong"  # the socket stays usable
    assert model_calls(fake_anthropic) == 2


async def test_websocket_connections_per_user(apps: Apps) -> None:
    app = await apps.make(ws_connections_per_user=2)
    alice, bob = await apps.guest(app), await apps.guest(app)
    slots = services_of(app).limits.limiter.slots
    key = f"ws:{await user_id_of(alice)}"
    async with serve(app) as live:
        async with open_ws(live, alice) as first, open_ws(live, alice) as second:
            for ws in (first, second):
                assert (await next_frame(ws))["type"] == "welcome"
            async with open_ws(live, alice) as third:
                refused = await next_frame(third)
                assert refused["type"] == "error" and refused["code"] == "rate_limited"
                assert refused["retry_after"] >= 1
                with pytest.raises(ConnectionClosed) as closed:
                    await third.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            async with open_ws(live, bob) as theirs:  # another user's cap is their own
                assert (await next_frame(theirs))["type"] == "welcome"
        for _ in range(100):  # the server notices the closes a moment later
            if await slots.held(key) == 0:
                break
            await asyncio.sleep(0.02)
        assert await slots.held(key) == 0
        async with open_ws(live, alice) as again:
            assert (await next_frame(again))["type"] == "welcome"


async def test_address_budget_refuses_websocket_handshakes(apps: Apps) -> None:
    app = await apps.make(rate_limit_ip="1/minute")
    guest = await apps.guest(app)  # signed up from another address than the sockets'
    async with serve(app) as live:
        async with open_ws(live, guest) as ws:
            assert (await next_frame(ws))["type"] == "welcome"
        with pytest.raises(InvalidStatus) as refused:  # the same session, once too often
            async with open_ws(live, guest):
                pass
        assert refused.value.response.status_code == 403


async def test_limits_off_adds_nothing(apps: Apps) -> None:
    app = await apps.make(rate_limits=False, rate_limit_ip="1/minute")
    client = apps.client(app)
    for _ in range(3):
        response = await client.get("/api/auth/session")
        assert response.status_code == 401
        assert not any(name in response.headers for name in RATE_HEADERS)
