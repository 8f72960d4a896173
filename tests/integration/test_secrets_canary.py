"""No secret ever appears in a response, frame, static file, log line or metric.

The real ``agentplatform serve`` runs as a subprocess with a canary value for every secret it
holds — both provider keys, the metrics token, and (on PostgreSQL) the database password —
and its providers pointed at the wire fakes, which accept only the canary keys. Every kind of
output is exercised: pages and static files, the OpenAPI document, guest sessions, agents,
chat over SSE and WebSocket, provider failures whose vendor message echoes the key, run
replay, ``/metrics``, and error answers. Then everything the process emitted — every response
(status, headers, body), every frame, its whole stdout and stderr — is searched for each
canary and for its random tail (which is what a masked key such as ``sk-…a1b2`` keeps).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from websockets.asyncio.client import ClientConnection, connect

from agentplatform.api.web import WEB_DIR
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import Script
from tests.integration.test_cli import cli, free_port
from tests.support.services import PostgresServer

REPLY = ["Canary", " replies", " fine."]
TAIL = 12  # characters of a canary's random part that must not appear either


@dataclass(frozen=True)
class Canaries:
    anthropic_key: str
    openai_key: str
    metrics_token: str
    db_password: str | None

    @classmethod
    def fresh(cls, db_password: str | None) -> Canaries:
        return cls(
            anthropic_key=f"sk-ant-api03-{secrets.token_hex(20)}",
            # Not "sk-"-shaped: key-pattern scrubbing alone would not catch it.
            openai_key=f"canary-openai-{secrets.token_hex(20)}",
            metrics_token=f"canary-metrics-{secrets.token_hex(20)}",
            db_password=db_password,
        )

    def values(self) -> dict[str, str]:
        found = {
            "ANTHROPIC_API_KEY": self.anthropic_key,
            "OPENAI_API_KEY": self.openai_key,
            "AGENTPLATFORM_METRICS_TOKEN": self.metrics_token,
        }
        if self.db_password is not None:
            found["database password"] = self.db_password
        return found


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """A database URL for the server, and the password inside it (PostgreSQL only)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'canary.sqlite'}", None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database(f"canary_{secrets.token_hex(4)}")
    password = f"pg-canary-{secrets.token_hex(20)}"  # the test cluster trusts loopback
    with_password = make_url(url).set(password=password)
    return with_password.render_as_string(hide_password=False), password


def server_env(
    database_url: str, canaries: Canaries, anthropic: str, openai: str
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AGENTPLATFORM_", "ANTHROPIC_", "OPENAI_"))
    }
    env.update(
        {
            "AGENTPLATFORM_DATABASE_URL": database_url,
            "AGENTPLATFORM_METRICS_TOKEN": canaries.metrics_token,
            "AGENTPLATFORM_LOG_LEVEL": "debug",  # the most the process will ever say
            "AGENTPLATFORM_RUN_HEARTBEAT_SECONDS": "0.2",
            "AGENTPLATFORM_RATE_LIMIT_IP": "1000/second",  # a scripted burst, not a flood
            "AGENTPLATFORM_MODEL_CACHE_DIR": "models",
            "AGENTPLATFORM_WORKSPACE_DIR": "workspaces",
            "ANTHROPIC_API_KEY": canaries.anthropic_key,
            "ANTHROPIC_BASE_URL": anthropic,
            "OPENAI_API_KEY": canaries.openai_key,
            "OPENAI_BASE_URL": openai,
        }
    )
    return env


def wait_until_up(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not come up within 60 s")


def test_no_canary_in_anything_the_server_emits(
    tmp_path: Path, database: tuple[str, str | None]
) -> None:
    database_url, db_password = database
    canaries = Canaries.fresh(db_password)
    log = tmp_path / "server.log"
    with (
        FakeAnthropic(api_key=canaries.anthropic_key, default=Script(text=REPLY)) as anthropic,
        FakeOpenAI(api_key=canaries.openai_key, default=Script(text=REPLY)) as openai,
        log.open("wb") as sink,
    ):
        env = server_env(database_url, canaries, anthropic.url, openai.url)
        migrated = subprocess.run(
            [*cli(), "migrate"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
        assert migrated.returncode == 0, log.read_text(errors="replace")
        port = free_port()
        server = subprocess.Popen(
            [*cli(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_up(f"http://127.0.0.1:{port}", server, log)
            exercise = Exercise(port, anthropic, openai, canaries)
            seen = asyncio.run(exercise.run())
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    emitted = log.read_text(errors="replace")
    assert '"event": "http_request"' in emitted and '"event": "run_finished"' in emitted
    assert '"status": "failed"' in emitted  # the provider failures really happened
    assert any("[redacted]" in s for s in seen)  # echoed keys reached the server, scrubbed
    # The session token and the user id are the client's to see, never the log's.
    assert exercise.session_token not in emitted and exercise.user_id not in emitted
    everything = {"server output": emitted, **{f"output #{i}": s for i, s in enumerate(seen)}}
    leaks = [
        f"{name} ({needle!r}) in {where}: …{text[max(0, text.find(needle) - 80) :][:200]}…"
        for name, value in canaries.values().items()
        for needle in (value, value[-TAIL:])
        for where, text in everything.items()
        if needle in text
    ]
    assert not leaks, "\n".join(leaks)


class Exercise:
    """Drives every kind of output of a running server and keeps all of it."""

    def __init__(
        self, port: int, anthropic: FakeAnthropic, openai: FakeOpenAI, canaries: Canaries
    ) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"
        self.anthropic = anthropic
        self.openai = openai
        self.canaries = canaries
        self.seen: list[str] = []
        self.session_token = self.user_id = "(no session yet)"

    async def keep(self, response: httpx.Response) -> None:
        await response.aread()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        self.seen.append(f"{response.status_code}\n{headers}\n\n{response.text}")

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        hooks: dict[str, list[Any]] = {"response": [self.keep]}
        return httpx.AsyncClient(base_url=self.base, headers=headers, event_hooks=hooks, timeout=30)

    async def run(self) -> list[str]:
        async with self.client() as anonymous:
            await self.public(anonymous)
            session = (await anonymous.post("/api/auth/guest")).json()
            token = self.session_token = session["token"]
            self.user_id = session["user"]["id"]
        async with self.client(token) as user:
            await self.api(user, token)
            await self.chats(user)
        await self.websocket(token)
        return self.seen

    async def public(self, c: httpx.AsyncClient) -> None:
        for path in ["/", "/health", "/ready", "/api/openapi.json", "/api/docs", "/nope"]:
            await c.get(path)
        for file in sorted(p.name for p in WEB_DIR.iterdir() if p.is_file()):
            await c.get(f"/static/{file}", headers={"Accept-Encoding": "identity"})
        await c.get("/metrics")  # 401: the token is configured
        await c.get("/metrics", headers={"Authorization": "Bearer wrong-token-0000000000"})
        await c.get("/metrics", headers={"Authorization": f"Bearer {self.canaries.metrics_token}"})
        await c.get("/api/agents")
        await c.get("/api/agents", headers={"Authorization": "Bearer garbage"})
        await c.get("/api/auth/validate/not-a-token")

    async def api(self, c: httpx.AsyncClient, token: str) -> None:
        for path in ["/api/auth/session", f"/api/auth/validate/{token}", "/api/models"]:
            await c.get(path)
        await c.get("/api/tools")
        await c.post("/api/agents", json={"name": ""})  # 422
        await c.post(
            "/api/agents", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        with contextlib.suppress(httpx.TransportError):  # the server may hang up early
            await c.post("/api/agents", content=b"x" * (2 * 1024 * 1024))  # 413
        await c.put("/api/agents/whatever")  # 405
        await c.get("/api/agents/not-an-id")  # 404
        await c.post("/api/agents", json={"name": "Bad model", "model": "nope:model"})

    async def chats(self, c: httpx.AsyncClient) -> None:
        claude = (
            await c.post("/api/agents", json={"name": "A", "model": "anthropic:claude-haiku-4-5"})
        ).json()
        gpt = (
            await c.post("/api/agents", json={"name": "O", "model": "openai:gpt-4o-mini"})
        ).json()
        await c.get("/api/agents")
        echo_a = f"invalid x-api-key: {self.canaries.anthropic_key}"
        echo_o = f"Incorrect API key provided: {self.canaries.openai_key}"
        self.anthropic.push(
            Script(text=REPLY),
            Script.error(401, error_message=echo_a),
            Script(text=["partial"], stream_error="invalid_request_error", error_message=echo_a),
        )
        self.openai.push(Script(text=REPLY), Script.error(401, error_message=echo_o))
        runs = []
        for agent in [claude, claude, claude, gpt, gpt]:
            response = await c.post(f"/api/agents/{agent['id']}/chat", json={"content": "Hi"})
            first = response.text.split("data:", 1)[1].split("\n", 1)[0]
            runs.append(json.loads(first))
        assert "provider_auth" in self.seen[-1] and "provider_auth" in self.seen[-4]
        for ack in runs:
            await c.get(f"/api/runs/{ack['run_id']}")
            await c.get(f"/api/runs/{ack['run_id']}/events")
            await c.get(f"/api/conversations/{ack['conversation_id']}/messages")
        await c.get("/api/conversations")
        await c.get("/api/agents/" + claude["id"])

    async def websocket(self, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with connect(f"{self.ws_base}/ws", additional_headers=headers) as ws:
            self.seen.append(str(ws.response.headers if ws.response else ""))
            welcome = await self.frame(ws)
            agent = await self.ws_agent(token)
            self.anthropic.push(
                Script.error(401, error_message=f"bad key {self.canaries.anthropic_key}")
            )
            for text in ["Hi", "Again"]:
                await ws.send(json.dumps({"type": "chat", "agent_id": agent, "content": text}))
                while (frame := await self.frame(ws))["type"] not in ("done", "error"):
                    pass
            assert frame["type"] == "done"
            await ws.send("{not json")
            await ws.send(json.dumps({"type": "ping", "nonce": "n"}))
            await ws.send(json.dumps({"type": "resume", "run_id": "nope", "after_seq": 0}))
            for _ in range(3):
                await self.frame(ws)
        path = f"{self.ws_base}/workspace/{welcome['user_id']}"
        async with connect(path, additional_headers=headers) as ws:
            await self.frame(ws)
        assert any('"code": "provider_auth"' in s for s in self.seen)

    async def frame(self, ws: ClientConnection) -> dict[str, Any]:
        text = await asyncio.wait_for(ws.recv(), 15)
        assert isinstance(text, str)
        self.seen.append(text)
        frame: dict[str, Any] = json.loads(text)
        return frame

    async def ws_agent(self, token: str) -> str:
        async with self.client(token) as c:
            body = {"name": "W", "model": "anthropic:claude-haiku-4-5"}
            agent_id: str = (await c.post("/api/agents", json=body)).json()["id"]
            return agent_id
