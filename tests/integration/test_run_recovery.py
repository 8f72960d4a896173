"""Runs a process left behind are ended ``interrupted``; shutdown ends live runs the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from agentplatform.api.deps import Services
from agentplatform.app import create_app
from agentplatform.config import Settings
from agentplatform.store.db import Database
from agentplatform.store.migrate import upgrade
from agentplatform.store.repositories import (
    AgentRepository,
    IdentityRepository,
    MessageRepository,
    RunRepository,
)
from tests.conftest import provider_settings
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import Script
from tests.support.chat import AGENT_FIELDS


async def test_start_up_marks_abandoned_runs_interrupted(
    backend: str,
    database_urls: Callable[[str], str],
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
) -> None:
    url = database_urls(backend)
    db = Database(url)
    await upgrade(db)
    _, me = await IdentityRepository(db).create_guest(Settings().session_ttl)
    agent = await AgentRepository(db).create(
        me.user_id,
        AGENT_FIELDS,
    )
    runs = RunRepository(db)
    turn = await runs.begin_turn(me.user_id, agent.id, "Hello?")
    assert await runs.start(turn.run.id, worker_id="a-process-that-crashed") is not None
    await runs.heartbeat(turn.run.id, "Half an ans", None, 3)
    await db.dispose()

    # PostgreSQL may have other live replicas: only runs past their lease are ended.
    settings = Settings(
        database_url=url,
        run_lease_seconds=0.001 if backend == "postgres" else 30,
        **provider_settings(fake_anthropic, fake_openai, tmp_path),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            c.cookies.clear()
            token = (await c.post("/api/auth/guest")).json()["token"]
            assert token
    db = Database(url)
    try:
        run = await RunRepository(db).get(me.user_id, turn.run.id)
        assert (run.status, run.error_code) == ("interrupted", "interrupted")
        page = await MessageRepository(db).list(me.user_id, turn.conversation_id)
        assistant = page.items[-1]
        assert (assistant.status, assistant.content) == ("interrupted", "Half an ans")
        counted = await AgentRepository(db).get(me.user_id, agent.id)
        assert (counted.total_runs, counted.successful_runs) == (1, 0)
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend_name", ["sqlite"])
async def test_shutdown_interrupts_live_runs_and_keeps_their_text(
    backend_name: str,
    database_urls: Callable[[str], str],
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
) -> None:
    url = database_urls(backend_name)
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    settings = Settings(
        database_url=url, **provider_settings(fake_anthropic, fake_openai, tmp_path)
    )
    fake_anthropic.push(Script(text=["kept", " text"] + [" more"] * 100, token_delay=0.05))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        _, me = await services.identity.create_guest(settings.session_ttl)
        agent = await services.agents.create(
            me.user_id,
            AGENT_FIELDS,
        )
        turn = await services.runner.start_turn(me.user_id, agent.id, "go")
        async for event in services.bus.subscribe(turn.run.id):
            if event.type == "delta":
                break  # mid-reply: now the server shuts down
    db = Database(url)
    try:
        run = await RunRepository(db).get(me.user_id, turn.run.id)
        assert run.status == "interrupted"
        page = await MessageRepository(db).list(me.user_id, turn.conversation_id)
        assistant = page.items[-1]
        assert assistant.status == "interrupted" and assistant.content.startswith("kept")
        assert (await AgentRepository(db).get(me.user_id, agent.id)).total_runs == 1
    finally:
        await db.dispose()
