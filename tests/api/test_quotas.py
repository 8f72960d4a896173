"""Guest quotas and the concurrent-run cap: a spent quota answers 429 before any model call.

Quotas count in the database (``store/repositories/usage.py``), so these run on SQLite and
PostgreSQL. The fake provider's recorded requests prove the model was not called.
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

from tests.conftest import provider_settings
from tests.fakes import FakeAnthropic, FakeOpenAI, Script
from tests.support.chat import make_agent, next_frame, parse_sse, token_of
from tests.support.limits import Apps, app_factory, model_calls, serve

DAY = 24 * 3600
TERMINAL = {"completed", "failed", "cancelled", "interrupted"}


@pytest.fixture
async def apps(
    migrated_url: str, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI, tmp_path: Path
) -> AsyncIterator[Apps]:
    base = provider_settings(fake_anthropic, fake_openai, tmp_path / "models")
    async with app_factory({"database_url": migrated_url, **base}) as factory:
        yield factory


def assert_quota(response: httpx.Response, quota: str, limit: int) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"] == {"quota": quota, "limit": limit}


async def chat(client: httpx.AsyncClient, agent_id: str, content: str) -> httpx.Response:
    return await client.post(f"/api/agents/{agent_id}/chat", json={"content": content})


async def finished(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(500):
        run: dict[str, Any] = (await client.get(f"/api/runs/{run_id}")).json()
        if run["status"] in TERMINAL:
            return run
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} did not finish")


async def test_daily_messages_quota_stops_the_model(
    apps: Apps, fake_anthropic: FakeAnthropic
) -> None:
    app = await apps.make(guest_messages_per_day=2)
    guest, other = await apps.guest(app), await apps.guest(app)
    agent = await make_agent(guest)
    for n in range(2):
        assert parse_sse((await chat(guest, agent["id"], f"{n}")).text)[-1][0] == "done"
    refused = await chat(guest, agent["id"], "one more")
    assert_quota(refused, "quota_messages", 2)
    assert 1 <= int(refused.headers["Retry-After"]) <= DAY  # back at midnight UTC
    assert refused.headers["RateLimit-Limit"] == "2"
    assert refused.headers["RateLimit-Remaining"] == "0"
    task = await guest.post(f"/api/agents/{agent['id']}/runs", json={"input": "x"})
    assert_quota(task, "quota_messages", 2)
    async with serve(app) as live:
        headers = {"Authorization": f"Bearer {token_of(guest)}"}
        async with connect(f"ws://{live}/ws", additional_headers=headers) as ws:
            assert (await next_frame(ws))["type"] == "welcome"
            await ws.send(json.dumps({"type": "chat", "agent_id": agent["id"], "content": "ws"}))
            error = await next_frame(ws)
            assert error["type"] == "error" and error["code"] == "quota_exceeded"
            assert 1 <= error["retry_after"] <= DAY
    assert model_calls(fake_anthropic) == 2
    # The quota is the guest's own.
    theirs = await make_agent(other)
    assert parse_sse((await chat(other, theirs["id"], "hi")).text)[-1][0] == "done"
    assert model_calls(fake_anthropic) == 3


async def test_daily_tokens_quota_stops_the_model(
    apps: Apps, fake_anthropic: FakeAnthropic
) -> None:
    app = await apps.make(guest_tokens_per_day=20)
    guest = await apps.guest(app)
    agent = await make_agent(guest)
    fake_anthropic.push(Script(text=["short"], input_tokens=10, output_tokens=5))
    first = parse_sse((await chat(guest, agent["id"], "first")).text)
    run = await finished(guest, first[0][1]["run_id"])
    assert run["input_tokens"] + run["output_tokens"] == 15  # under 20: one more turn
    fake_anthropic.push(Script(text=["long"], input_tokens=10, output_tokens=5))
    second = parse_sse((await chat(guest, agent["id"], "second")).text)
    await finished(guest, second[0][1]["run_id"])  # its tokens are recorded: 30 now
    assert_quota(await chat(guest, agent["id"], "third"), "quota_tokens", 20)
    assert model_calls(fake_anthropic) == 2


async def test_agents_per_guest(apps: Apps) -> None:
    app = await apps.make(guest_max_agents=2)
    guest = await apps.guest(app)
    first = await make_agent(guest)
    await make_agent(guest)
    refused = await guest.post("/api/agents", json={"name": "Third"})
    assert_quota(refused, "quota_agents", 2)
    assert "Retry-After" not in refused.headers  # waiting does not help; deleting does
    assert (await guest.delete(f"/api/agents/{first['id']}")).status_code == 204
    assert (await guest.post("/api/agents", json={"name": "Third"})).status_code == 201


async def test_concurrent_runs_per_user(apps: Apps, fake_anthropic: FakeAnthropic) -> None:
    app = await apps.make(runs_per_user=1)
    guest, other = await apps.guest(app), await apps.guest(app)
    agent, theirs = await make_agent(guest), await make_agent(other)
    fake_anthropic.push(Script(text=["slow "] * 10, token_delay=0.05))
    started = await guest.post(f"/api/agents/{agent['id']}/runs", json={"input": "long task"})
    assert started.status_code == 201
    busy = await chat(guest, agent["id"], "meanwhile")
    assert busy.status_code == 429
    assert busy.json()["error"]["code"] == "rate_limited"
    assert busy.json()["error"]["details"] == {"budget": "runs_user"}
    assert int(busy.headers["Retry-After"]) >= 1
    assert busy.headers["RateLimit-Limit"] == "1"
    assert parse_sse((await chat(other, theirs["id"], "mine")).text)[-1][0] == "done"
    await finished(guest, started.json()["id"])
    assert parse_sse((await chat(guest, agent["id"], "now")).text)[-1][0] == "done"
    assert model_calls(fake_anthropic) == 3  # the long task, the other user's, "now"
