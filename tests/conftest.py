"""Fixtures shared by every test: backends (SQLite and a real PostgreSQL), apps, clients."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from agentplatform.app import create_app
from agentplatform.config import Settings
from agentplatform.store.db import Database
from agentplatform.store.migrate import upgrade
from tests.support.services import PostgresServer, missing_reason

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", "postgres"]


def need_service(kind: str, reason: str | None) -> None:
    """Skip locally with the reason; under CI a missing service fails the run."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{kind} is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"{kind} unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    need_service("PostgreSQL", missing_reason("postgres"))
    server = PostgresServer.start(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], str]:
    """Makes a fresh, empty database URL for a backend."""
    counter = iter(range(1_000_000))

    def make(backend: str) -> str:
        n = next(counter)
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("sqlite") / f"db{n}.sqlite"
            return f"sqlite+aiosqlite:///{path}"
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.create_database(f"test_{n}")

    return make


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def migrated_url(backend: str, database_urls: Callable[[str], str]) -> str:
    """One migrated database per backend for the whole session; tests own their users."""
    url = database_urls(backend)
    db = Database(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    return url


@pytest.fixture(scope="session")
def settings(migrated_url: str) -> Settings:
    return Settings(database_url=migrated_url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


GuestFactory = Callable[[], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def new_guest(app: FastAPI) -> AsyncIterator[GuestFactory]:
    """Makes clients, each signed in as a new guest with a bearer token (no cookies kept)."""
    clients: list[httpx.AsyncClient] = []

    async def make() -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app)
        c = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(c)
        response = await c.post("/api/auth/guest")
        assert response.status_code == 201, response.text
        c.cookies.clear()
        c.headers["Authorization"] = f"Bearer {response.json()['token']}"
        return c

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
async def guest(new_guest: GuestFactory) -> httpx.AsyncClient:
    return await new_guest()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path
