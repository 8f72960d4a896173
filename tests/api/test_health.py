"""Liveness and readiness, including a database that is not there."""

from __future__ import annotations

import socket

import httpx

from agentplatform.app import create_app
from agentplatform.config import Settings


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}


async def test_unknown_route_and_method_use_the_envelope(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await client.put("/api/agents")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_unreachable_database_is_503_not_500() -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{closed_port()}/nothing"
    app = create_app(Settings(database_url=url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/health")).status_code == 200
            ready = await c.get("/ready")
            assert ready.status_code == 503
            assert ready.headers["retry-after"].isdigit()
            for method, path in [
                ("POST", "/api/auth/guest"),
                ("GET", "/api/agents"),
                ("GET", "/api/auth/session"),
            ]:
                response = await c.request(
                    method, path, headers={"Authorization": "Bearer some-token"}
                )
                assert response.status_code == 503, (path, response.text)
                assert response.json()["error"]["code"] == "unavailable"
                assert response.headers["retry-after"].isdigit()
                assert "Traceback" not in response.text and "asyncpg" not in response.text
