"""Helpers for the limit tests: apps with small limits, clients at chosen addresses, live serving.

Every limit test builds its own app (the session app runs with rate limits off), so budgets
spent here never throttle another test. ``httpx.ASGITransport(client=...)`` sets the socket
peer address the app sees, which is how one process plays many clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from agentplatform.api.deps import Services
from agentplatform.app import create_app
from agentplatform.config import Settings

# Generous defaults, so a test trips only the budget it is about.
ROOMY: dict[str, Any] = {
    "rate_limits": True,
    "rate_limit_guest_sessions": "1000/minute",
    "rate_limit_ip": "1000/minute",
    "rate_limit_user": "1000/minute",
    "rate_limit_chat": "1000/minute",
    "ws_connections_per_user": 0,
    "runs_per_user": 0,
    "guest_max_agents": 0,
    "guest_messages_per_day": 0,
    "guest_tokens_per_day": 0,
}


class Apps:
    """Builds started apps, and clients for them; everything is closed by ``app_factory``."""

    def __init__(self, base: dict[str, Any], stack: contextlib.AsyncExitStack) -> None:
        self._base = base
        self._stack = stack

    async def make(self, **overrides: Any) -> FastAPI:
        app = create_app(Settings(**{**self._base, **ROOMY, **overrides}))
        await self._stack.enter_async_context(app.router.lifespan_context(app))
        return app

    def client(self, app: FastAPI, address: str = "192.0.2.10") -> httpx.AsyncClient:
        """A client whose requests reach ``app`` from ``address``; it keeps no cookies."""
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        client = httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies=no_cookies
        )
        self._stack.push_async_callback(client.aclose)
        return client

    async def guest(self, app: FastAPI, address: str = "192.0.2.10") -> httpx.AsyncClient:
        """A new guest signed in with a bearer token, calling from ``address``."""
        client = self.client(app, address)
        response = await client.post("/api/auth/guest")
        assert response.status_code == 201, response.text
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        return client


@contextlib.asynccontextmanager
async def app_factory(base: dict[str, Any]) -> AsyncIterator[Apps]:
    async with contextlib.AsyncExitStack() as stack:
        yield Apps(base, stack)


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


def model_calls(fake: Any) -> int:
    """How many chat requests a fake provider has received."""
    return sum(1 for r in fake.requests if r.method == "POST" and "messages" in r.path)


class _QuietServer(uvicorn.Server):
    """Leaves signal handling to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """``app`` (already started) served by uvicorn on loopback; yields ``127.0.0.1:port``.

    ``proxy_headers`` is off, as in ``agentplatform serve``: the app alone decides whether
    ``X-Forwarded-For`` is believed.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", proxy_headers=False)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
