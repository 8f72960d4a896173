"""Shared pieces of the hostile suite.

A user who owns real objects (an agent, a conversation with a finished run), a snapshot of
everything that user has in the database (to prove an attack changed nothing), the error
envelope every refusal must use, a capture of the errors the server logged, and a bridge that
lets synchronous fuzzers (Hypothesis, schemathesis) call the app on the test's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from agentplatform.api.deps import Services
from agentplatform.store.tables import Agent, AgentTag, Conversation, Message, Run, Session
from tests.support.chat import parse_sse

T = TypeVar("T")

# Every request of the suite gets this long before it counts as a hang.
REQUEST_TIMEOUT = 30.0


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


@dataclass(frozen=True, slots=True)
class Owner:
    """A signed-in guest and the ids of objects it owns (with a completed run)."""

    client: httpx.AsyncClient
    token: str
    user_id: str
    agent_id: str
    conversation_id: str
    run_id: str
    message_id: str

    @property
    def ids(self) -> dict[str, str]:
        """Values for every path parameter the API uses, all naming this user's objects."""
        return {
            "agent_id": self.agent_id,
            "conversation_id": self.conversation_id,
            "run_id": self.run_id,
            "user_id": self.user_id,
            "token": self.token,
        }


def with_ids(value: Any, owner: Owner) -> Any:
    """``value`` with every ``{agent_id}``-style placeholder in its strings set to the owner's."""
    if isinstance(value, str):
        return value.format(**owner.ids)
    if isinstance(value, list):
        return [with_ids(item, owner) for item in value]
    if isinstance(value, dict):
        return {key: with_ids(item, owner) for key, item in value.items()}
    return value


def guest_client(app: FastAPI) -> httpx.AsyncClient:
    """A client of the in-process app that keeps no cookies (bearer tokens only)."""
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(
        transport=transport, base_url="http://testserver", timeout=REQUEST_TIMEOUT
    )


async def sign_in(client: httpx.AsyncClient) -> str:
    """Makes ``client`` a new guest (bearer header, cookie dropped); returns the token."""
    response = await client.post("/api/auth/guest")
    assert response.status_code == 201, response.text
    client.cookies.clear()
    token: str = response.json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return token


async def seed_owner(client: httpx.AsyncClient, app: FastAPI) -> Owner:
    """Gives the signed-in ``client`` an agent, a conversation and one finished chat run."""
    token = client.headers["Authorization"].removeprefix("Bearer ")
    user_id = (await client.get("/api/auth/session")).json()["user"]["id"]
    agent = await client.post(
        "/api/agents",
        json={"name": "Private", "tags": ["secret"], "model": "anthropic:claude-sonnet-4-6"},
    )
    assert agent.status_code == 201, agent.text
    agent_id = agent.json()["id"]
    conversation = await client.post(
        "/api/conversations", json={"agent_id": agent_id, "title": "Mine"}
    )
    assert conversation.status_code == 201, conversation.text
    conversation_id = conversation.json()["id"]
    chat = await client.post(
        f"/api/agents/{agent_id}/chat",
        json={"content": "private words", "conversation_id": conversation_id},
    )
    events = dict(parse_sse(chat.text))
    assert chat.status_code == 200 and "done" in events, chat.text
    run_id = events["ack"]["run_id"]
    await services_of(app).runner.wait(run_id)
    return Owner(
        client=client,
        token=token,
        user_id=user_id,
        agent_id=agent_id,
        conversation_id=conversation_id,
        run_id=run_id,
        message_id=events["ack"]["message_id"],
    )


@pytest.fixture
async def owner(app: FastAPI) -> AsyncIterator[Owner]:
    """A new guest with an agent, a conversation and a finished run."""
    async with guest_client(app) as client:
        await sign_in(client)
        yield await seed_owner(client, app)


Snapshot = dict[str, list[dict[str, Any]]]


async def snapshot(app: FastAPI, user_id: str) -> Snapshot:
    """Every row the user owns, read straight from the database, in a stable order."""
    conversations = select(Conversation.id).where(Conversation.user_id == user_id)
    agents = select(Agent.id).where(Agent.user_id == user_id)
    queries = {
        "sessions": select(Session.__table__).where(Session.user_id == user_id),
        "agents": select(Agent.__table__).where(Agent.user_id == user_id),
        "agent_tags": select(AgentTag.__table__).where(AgentTag.agent_id.in_(agents)),
        "conversations": select(Conversation.__table__).where(Conversation.user_id == user_id),
        "messages": select(Message.__table__).where(Message.conversation_id.in_(conversations)),
        "runs": select(Run.__table__).where(Run.user_id == user_id),
    }
    rows: Snapshot = {}
    async with services_of(app).db.transaction() as tx:
        for name, query in queries.items():
            result = await tx.execute(query)
            rows[name] = sorted((dict(row) for row in result.mappings()), key=repr)
    return rows


def assert_envelope(response: httpx.Response) -> dict[str, Any]:
    """The response is the error envelope ``{"error": {"code", "message", "details"?}}``."""
    assert response.headers.get("content-type", "").startswith("application/json"), (
        response.status_code,
        response.headers.get("content-type"),
        response.text[:300],
    )
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict), body
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}, body
    assert isinstance(error["code"], str) and isinstance(error["message"], str), body
    assert "Traceback" not in response.text
    return error


class ServerLog(logging.Handler):
    """Collects the ERROR records (with tracebacks) the server logs while it is installed."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(record) for record in self.records)


# The root logger hears the app; uvicorn's own loggers do not propagate to it.
SERVER_LOGGERS = ("", "uvicorn")


@contextmanager
def server_log() -> Iterator[ServerLog]:
    handler = ServerLog()
    loggers = [logging.getLogger(name) for name in SERVER_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


class LoopBridge:
    """Runs coroutines on the test's event loop from a worker thread, with a deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = REQUEST_TIMEOUT) -> T:
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, timeout), self.loop)
        return future.result(timeout + 5)
