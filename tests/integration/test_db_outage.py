"""The database goes away and comes back: 503s with Retry-After meanwhile, then recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agentplatform.app import create_app
from agentplatform.config import Settings
from agentplatform.store.db import Database
from agentplatform.store.migrate import upgrade
from tests.conftest import SAME_ORIGIN, need_service
from tests.support.services import PostgresServer, missing_reason

RECOVERY_DEADLINE = 10.0


@pytest.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[PostgresServer]:
    need_service("PostgreSQL", missing_reason("postgres"))
    server = PostgresServer.start(tmp_path)
    try:
        yield server
    finally:
        server.stop()


async def test_outage_answers_503_and_recovers(own_postgres: PostgresServer) -> None:
    url = own_postgres.create_database("outage")
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    app = create_app(Settings(database_url=url, database_pool_size=2))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=SAME_ORIGIN
        ) as c:
            token = (await c.post("/api/auth/guest")).json()["token"]
            c.cookies.clear()
            auth = {"Authorization": f"Bearer {token}"}
            assert (await c.get("/api/agents", headers=auth)).status_code == 200

            own_postgres.pause()
            assert (await c.get("/health")).status_code == 200
            ready = await c.get("/ready")
            assert ready.status_code == 503 and ready.headers["retry-after"].isdigit()
            for method, path in [
                ("GET", "/api/agents"),
                ("POST", "/api/agents"),
                ("GET", "/api/auth/session"),
                ("POST", "/api/auth/guest"),
            ]:
                response = await c.request(method, path, headers=auth, json={"name": "x"})
                assert response.status_code == 503, (path, response.text)
                assert response.json()["error"]["code"] == "unavailable"
                assert response.headers["retry-after"].isdigit()

            own_postgres.resume()
            started = time.monotonic()
            while (await c.get("/ready")).status_code != 200:  # no event to wait on: poll
                assert time.monotonic() - started < RECOVERY_DEADLINE, "no recovery in 10 s"
                await asyncio.sleep(0.1)
            assert (await c.get("/api/agents", headers=auth)).status_code == 200
            created = await c.post("/api/agents", headers=auth, json={"name": "after"})
            assert created.status_code == 201


async def test_websocket_handshake_during_outage_is_try_again(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    import socket

    import uvicorn

    url = own_postgres.create_database("ws_outage")
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    app = create_app(Settings(database_url=url))
    async with app.router.lifespan_context(app):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        server.capture_signals = __import__("contextlib").nullcontext  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            own_postgres.pause()
            port = sock.getsockname()[1]
            headers = {"Authorization": "Bearer whatever-token"}
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=headers):
                    pass
            assert refused.value.response.status_code in {403, 503}
        finally:
            server.should_exit = True
            await task
            sock.close()
            own_postgres.resume()
