"""Fixtures shared by every test: backends (SQLite and a real PostgreSQL), apps, clients."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from agentplatform.app import create_app
from agentplatform.config import Settings
from agentplatform.store.db import Database
from agentplatform.store.migrate import upgrade
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import Script, ScriptedFake
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


TEST_ANTHROPIC_KEY = "sk-ant-test-canary-0000"
TEST_OPENAI_KEY = "sk-openai-test-canary-0000"
FAKE_REPLY = ["Hello", " from", " the", " fake", " model."]


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=TEST_ANTHROPIC_KEY, default=Script(text=FAKE_REPLY)) as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=TEST_OPENAI_KEY, default=Script(text=FAKE_REPLY)) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_fakes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with the fakes' default script and no recorded requests."""
    yield
    for name in ("fake_anthropic", "fake_openai"):
        if name in request.fixturenames:
            fake: ScriptedFake = request.getfixturevalue(name)
            default = fake.default
            fake.reset()
            fake.default = default


def sandbox_root() -> Path:
    """A workspace root the sandbox's unprivileged user can reach (pytest's tmp is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="agentplatform-ws-"))
    root.chmod(0o711)
    atexit.register(shutil.rmtree, root, True)
    return root


def provider_settings(
    anthropic: FakeAnthropic, openai: FakeOpenAI, cache_dir: Path
) -> dict[str, Any]:
    return {
        "anthropic_api_key": TEST_ANTHROPIC_KEY,
        "anthropic_base_url": anthropic.url,
        "openai_api_key": TEST_OPENAI_KEY,
        "openai_base_url": openai.url,
        "model_cache_dir": cache_dir,
        "workspace_dir": sandbox_root(),
        "run_heartbeat_seconds": 0.2,
        # Shared test apps are one busy loopback client; tests/api/test_limits.py builds
        # its own apps with small limits.
        "rate_limits": False,
    }


@pytest.fixture(scope="session")
def settings(
    migrated_url: str,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    extra = provider_settings(fake_anthropic, fake_openai, tmp_path_factory.mktemp("models"))
    return Settings(database_url=migrated_url, **extra)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def live(app: FastAPI, settings: Settings) -> AsyncIterator[str]:
    """The session's app served by uvicorn on loopback; yields its ``127.0.0.1:port``."""
    # IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted sockets (no 40 ms Nagle stalls).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)  # connections queue from here on, so no need to wait for start-up
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        ws_max_size=settings.ws_max_frame_bytes,
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


# Browsers send Origin on every state-changing request; cookie-holding test clients do too.
SAME_ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=SAME_ORIGIN
    ) as c:
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
