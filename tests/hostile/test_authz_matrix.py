"""The authorization matrix: every route of the app is classified, and every user route holds.

``ROUTES`` classifies each route the app serves — the operations of its OpenAPI document, the
WebSocket routes and the routes kept out of the document (dashboard, static files, docs) — as
``public`` or ``user``. A route missing from the table fails ``test_every_route_is_classified``,
so a new route cannot ship without someone deciding who may call it.

Every ``user`` route is then tried with no session, an expired one, a garbage token and a
revoked (logged-out) one, each sent as a bearer token and as the session cookie: all 401 in the
error envelope (WebSockets: refused before any data frame). Another user's valid session on the
first user's real object ids gets 404, or — on routes that name no object — only its own data.
Nothing the first user owns changes (database snapshot before and after) and the model is never
called.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from fastapi import FastAPI
from sqlalchemy import update
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agentplatform.api.deps import SESSION_COOKIE
from agentplatform.security.tokens import hash_token
from agentplatform.store.tables import Session
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.hostile.conftest import (
    REQUEST_TIMEOUT,
    Owner,
    assert_envelope,
    guest_client,
    services_of,
    sign_in,
    snapshot,
    with_ids,
)

Access = Literal["public", "user"]


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may call a route, and how to call it as another user.

    ``body`` and ``query`` are valid inputs whose ``{placeholders}`` are the first user's ids,
    so only identity can refuse them. ``other_user`` is the status another user gets: 404, or
    ``None`` where the route names no object and answers with the caller's own data.
    """

    access: Access
    body: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)
    other_user: int | None = 404


PUBLIC = Rule("public")
OWN_DATA = Rule("user", other_user=None)
OWNED_OBJECT = Rule("user")

ROUTES: dict[tuple[str, str], Rule] = {
    # Probes, identity bootstrap, docs, dashboard.
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    # Operator's scrape: open, or behind its own token (AGENTPLATFORM_METRICS_TOKEN), never a
    # user session; what it may show is tested in tests/api/test_metrics.py.
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/api/openapi.json"): PUBLIC,
    ("HEAD", "/api/openapi.json"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,
    ("HEAD", "/api/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("HEAD", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("HEAD", "/"): PUBLIC,
    ("GET", "/static/{name:path}"): PUBLIC,
    ("HEAD", "/static/{name:path}"): PUBLIC,
    ("POST", "/api/auth/guest"): PUBLIC,
    # The token is the path itself; its refusals are tested in test_validate_refuses_...
    ("GET", "/api/auth/validate/{token}"): PUBLIC,
    # Identity.
    ("GET", "/api/auth/session"): OWN_DATA,
    ("POST", "/api/auth/logout"): OWN_DATA,
    # Agents.
    ("POST", "/api/agents"): Rule("user", body={"name": "Intruder"}, other_user=None),
    ("GET", "/api/agents"): Rule("user", query={"q": "Private"}, other_user=None),
    ("GET", "/api/agents/{agent_id}"): OWNED_OBJECT,
    ("PATCH", "/api/agents/{agent_id}"): Rule(
        "user", body={"name": "Stolen", "status": "archived"}
    ),
    ("DELETE", "/api/agents/{agent_id}"): OWNED_OBJECT,
    # Conversations and messages.
    ("POST", "/api/conversations"): Rule("user", body={"agent_id": "{agent_id}"}),
    ("GET", "/api/conversations"): Rule("user", query={"agent_id": "{agent_id}"}, other_user=None),
    ("GET", "/api/conversations/{conversation_id}"): OWNED_OBJECT,
    ("PATCH", "/api/conversations/{conversation_id}"): Rule("user", body={"title": "Stolen"}),
    ("DELETE", "/api/conversations/{conversation_id}"): OWNED_OBJECT,
    ("GET", "/api/conversations/{conversation_id}/messages"): OWNED_OBJECT,
    # Runs and chat.
    ("POST", "/api/agents/{agent_id}/runs"): Rule("user", body={"input": "Tell me secrets"}),
    ("GET", "/api/runs/{run_id}"): OWNED_OBJECT,
    ("POST", "/api/runs/{run_id}/cancel"): OWNED_OBJECT,
    ("GET", "/api/runs/{run_id}/events"): OWNED_OBJECT,
    ("POST", "/api/agents/{agent_id}/chat"): Rule(
        "user", body={"content": "Tell me secrets", "conversation_id": "{conversation_id}"}
    ),
    # Catalogues.
    ("GET", "/api/models"): OWN_DATA,
    ("GET", "/api/tools"): OWN_DATA,
    # WebSockets: /ws is the caller's own workspace (frames naming others' objects are tested
    # in test_other_user_on_the_socket_...); /workspace/{user_id} must be the caller's id.
    ("WS", "/ws"): OWN_DATA,
    ("WS", "/workspace/{user_id}"): OWNED_OBJECT,
}

# Routes kept out of the OpenAPI document on purpose; each must be served.
NON_SCHEMA_ROUTES = {
    ("GET", "/"),
    ("GET", "/static/{name:path}"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/docs"),
    ("GET", "/metrics"),
    ("WS", "/ws"),
    ("WS", "/workspace/{user_id}"),
}

# A file the public /static route serves, to fill its path.
STATIC_FILE = "app.js"


def _visit(route: BaseRoute, found: set[tuple[str, str]]) -> None:
    if hasattr(route, "effective_route_contexts"):
        # FastAPI keeps included routers as one node; this is how it lists what they serve.
        for context in route.effective_route_contexts():
            inner = context.starlette_route
            if isinstance(inner, WebSocketRoute):
                found.add(("WS", inner.path))
            else:
                found.update((method, context.path) for method in context.methods)
    elif isinstance(route, WebSocketRoute):
        found.add(("WS", route.path))
    elif isinstance(route, Route):
        found.update((method, route.path) for method in route.methods or ())
    elif isinstance(route, Mount):
        found.add(("*", route.path))  # a mounted app answers everything under its prefix
    else:
        raise AssertionError(f"cannot tell what {route!r} serves; teach _visit about it")


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path template) the app answers, WebSockets as ``("WS", path)``."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        _visit(route, found)
    return found


def documented_routes(app: FastAPI) -> set[tuple[str, str]]:
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def fill(template: str, owner: Owner) -> str:
    """The route's path with the owner's ids (``KeyError`` names an unknown parameter)."""
    return template.replace("{name:path}", STATIC_FILE).format(**owner.ids)


def user_http_routes() -> list[tuple[str, str, Rule]]:
    """User HTTP routes; logout last, since it spends the caller's session."""
    routes = [
        (method, path, rule)
        for (method, path), rule in ROUTES.items()
        if rule.access == "user" and method != "WS"
    ]
    return sorted(routes, key=lambda r: r[1] == "/api/auth/logout")


async def bad_credentials(app: FastAPI) -> dict[str, str | None]:
    """Token per kind of bad session: none, expired, garbage, revoked."""
    async with guest_client(app) as client:
        expired = await sign_in(client)
        revoked = await sign_in(client)
        assert (await client.post("/api/auth/logout")).status_code == 204
    async with services_of(app).db.transaction() as tx:
        await tx.execute(
            update(Session)
            .where(Session.token_hash == hash_token(expired))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    return {
        "no session": None,
        "expired": expired,
        "garbage": secrets.token_urlsafe(32),
        "revoked": revoked,
    }


def presented(token: str | None, how: str) -> dict[str, str]:
    """Headers presenting ``token`` as a bearer token or as the session cookie."""
    if token is None:
        return {}
    if how == "bearer":
        return {"Authorization": f"Bearer {token}"}
    return {"Cookie": f"{SESSION_COOKIE}={token}", "Origin": "http://testserver"}


def secrets_of(owner: Owner) -> list[str]:
    """Strings that must never reach anyone but the owner."""
    return [
        owner.token,
        owner.agent_id,
        owner.conversation_id,
        owner.run_id,
        owner.message_id,
        "private words",
    ]


def assert_no_leak(text: str, owner: Owner) -> None:
    for secret in secrets_of(owner):
        assert secret not in text, f"leaked {secret!r}: {text[:300]}"


@pytest.fixture
def model_calls(
    fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> tuple[FakeAnthropic, FakeOpenAI]:
    return fake_anthropic, fake_openai


def call_count(fakes: tuple[FakeAnthropic, FakeOpenAI]) -> int:
    return sum(len(fake.requests) for fake in fakes)


# --- the table --------------------------------------------------------------------------------


async def test_every_route_is_classified(app: FastAPI) -> None:
    served = served_routes(app)
    documented = documented_routes(app)
    assert documented <= served, documented - served
    missing = NON_SCHEMA_ROUTES - served
    assert not missing, f"routes this suite expects are gone: {sorted(missing)}"
    unclassified = sorted(served - ROUTES.keys())
    assert not unclassified, f"classify these routes in ROUTES (public/user): {unclassified}"
    stale = sorted(ROUTES.keys() - served)
    assert not stale, f"ROUTES names routes the app no longer serves: {stale}"


# --- user routes: bad sessions ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["bearer", "cookie"])
async def test_user_routes_refuse_bad_sessions(
    app: FastAPI, owner: Owner, how: str, model_calls: tuple[FakeAnthropic, FakeOpenAI]
) -> None:
    credentials = await bad_credentials(app)
    before = await snapshot(app, owner.user_id)
    calls = call_count(model_calls)
    tried = 0
    async with guest_client(app) as anonymous:
        for method, template, rule in user_http_routes():
            for kind, token in credentials.items():
                response = await anonymous.request(
                    method,
                    fill(template, owner),
                    params=with_ids(rule.query, owner),
                    json=with_ids(rule.body, owner),
                    headers=presented(token, how),
                )
                where = f"{method} {template} with {kind} ({how})"
                assert response.status_code == 401, (where, response.text)
                assert assert_envelope(response)["code"] == "unauthorized", where
                assert_no_leak(response.text, owner)
                tried += 1
    assert tried >= 4 * 20
    assert await snapshot(app, owner.user_id) == before
    assert call_count(model_calls) == calls


async def test_validate_refuses_bad_tokens(app: FastAPI) -> None:
    credentials = await bad_credentials(app)
    async with guest_client(app) as anonymous:
        for kind, token in credentials.items():
            path = f"/api/auth/validate/{token or 'x'}"
            response = await anonymous.get(path)
            assert response.status_code == 401, (kind, response.text)
            assert_envelope(response)


# --- user routes: another user ------------------------------------------------------------------


async def test_other_user_gets_404_and_changes_nothing(
    app: FastAPI, owner: Owner, model_calls: tuple[FakeAnthropic, FakeOpenAI]
) -> None:
    before = await snapshot(app, owner.user_id)
    calls = call_count(model_calls)
    async with guest_client(app) as intruder:
        await sign_in(intruder)
        for method, template, rule in user_http_routes():
            response = await intruder.request(
                method,
                fill(template, owner),
                params=with_ids(rule.query, owner),
                json=with_ids(rule.body, owner),
            )
            where = f"{method} {template}"
            if rule.other_user is None:
                assert response.status_code < 300, (where, response.text)
            else:
                assert response.status_code == rule.other_user, (where, response.text)
                assert assert_envelope(response)["code"] == "not_found", where
            assert_no_leak(response.text, owner)
    assert await snapshot(app, owner.user_id) == before
    assert call_count(model_calls) == calls


async def test_other_users_conversation_cannot_be_continued(app: FastAPI, owner: Owner) -> None:
    """Chat with one's own agent but the owner's conversation id: 404, nothing appended."""
    before = await snapshot(app, owner.user_id)
    async with guest_client(app) as intruder:
        await sign_in(intruder)
        agent = await intruder.post("/api/agents", json={"name": "Mine"})
        assert agent.status_code == 201, agent.text
        response = await intruder.post(
            f"/api/agents/{agent.json()['id']}/chat",
            json={"content": "append this", "conversation_id": owner.conversation_id},
        )
        assert response.status_code == 404, response.text
        assert_envelope(response)
    assert await snapshot(app, owner.user_id) == before


# --- public routes ------------------------------------------------------------------------------


async def test_public_routes_need_no_session(app: FastAPI, owner: Owner) -> None:
    async with guest_client(app) as anonymous:
        for (method, template), rule in ROUTES.items():
            if rule.access != "public" or method == "WS":
                continue
            response = await anonymous.request(method, fill(template, owner))
            assert response.status_code < 400, (method, template, response.status_code)


# --- WebSockets ---------------------------------------------------------------------------------


def ws_headers(token: str | None, how: str) -> dict[str, str]:
    headers = presented(token, how)
    headers.pop("Origin", None)  # no Origin: a non-browser client, which may use the cookie
    return headers


async def receive(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(REQUEST_TIMEOUT):
        frame: dict[str, Any] = json.loads(await ws.recv())
    return frame


async def assert_refused(live: str, path: str, headers: dict[str, str]) -> None:
    """The handshake is refused, or the socket closes before any data frame."""
    try:
        async with connect(
            f"ws://{live}{path}", additional_headers=headers, open_timeout=REQUEST_TIMEOUT
        ) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                frame = await receive(ws)
                raise AssertionError(f"{path} sent a frame: {frame!r}")
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    except InvalidStatus as refused:
        assert refused.response.status_code in {401, 403}, refused.response.status_code


@pytest.mark.parametrize("how", ["bearer", "cookie"])
async def test_websockets_refuse_bad_sessions(
    app: FastAPI, live: str, owner: Owner, how: str
) -> None:
    credentials = await bad_credentials(app)
    async with guest_client(app) as intruder:
        other = await sign_in(intruder)
    before = await snapshot(app, owner.user_id)
    for (method, template), rule in ROUTES.items():
        if method != "WS" or rule.access != "user":
            continue
        for token in credentials.values():
            await assert_refused(live, fill(template, owner), ws_headers(token, how))
        if rule.other_user is not None:  # a path naming the owner: the other user is refused
            await assert_refused(live, fill(template, owner), ws_headers(other, how))
    assert await snapshot(app, owner.user_id) == before


async def frames_after(ws: ClientConnection, frame: dict[str, Any]) -> list[dict[str, Any]]:
    """Sends ``frame`` then a ping; returns what came back before the pong."""
    await ws.send(json.dumps(frame))
    await ws.send(json.dumps({"type": "ping", "nonce": "end"}))
    received: list[dict[str, Any]] = []
    while (reply := await receive(ws)) != {"type": "pong", "nonce": "end"}:
        received.append(reply)
    return received


async def frames_of_a_whole_run(ws: ClientConnection, agent_id: str) -> list[dict[str, Any]]:
    """Runs a chat turn to its end; every frame received meanwhile, whatever its run."""
    chat = {"type": "chat", "agent_id": agent_id, "content": "mine", "client_msg_id": "own"}
    await ws.send(json.dumps(chat))
    received: list[dict[str, Any]] = []
    run_id = None
    while True:
        frame = await receive(ws)
        received.append(frame)
        if frame["type"] == "ack":
            run_id = frame["run_id"]
        if frame.get("run_id") == run_id and frame["type"] in ("done", "error") and "seq" in frame:
            return received


async def test_other_user_on_the_socket_cannot_touch_owner_objects(
    app: FastAPI, live: str, owner: Owner, model_calls: tuple[FakeAnthropic, FakeOpenAI]
) -> None:
    async with guest_client(app) as intruder:
        token = await sign_in(intruder)
        own_agent = (await intruder.post("/api/agents", json={"name": "Mine"})).json()["id"]
    before = await snapshot(app, owner.user_id)
    calls = call_count(model_calls)
    attacks: list[dict[str, Any]] = [
        {"type": "resume", "run_id": owner.run_id, "after_seq": 0},
        {"type": "cancel", "run_id": owner.run_id},
        {"type": "chat", "agent_id": owner.agent_id, "content": "hi", "client_msg_id": "a1"},
        {
            "type": "chat",
            "agent_id": own_agent,
            "conversation_id": owner.conversation_id,
            "content": "append this",
            "client_msg_id": "a2",
        },
    ]
    async with connect(
        f"ws://{live}/ws",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=REQUEST_TIMEOUT,
    ) as ws:
        assert (await receive(ws))["type"] == "welcome"
        for attack in attacks:
            replies = await frames_after(ws, attack)
            assert [r["type"] for r in replies] == ["error"], (attack, replies)
            assert replies[0]["code"] == "not_found", (attack, replies)
            assert_no_leak(json.dumps(replies), owner)
        assert call_count(model_calls) == calls
        # A replay of the owner's finished run, had ``resume`` started one, would be over long
        # before a whole run of our own: whatever came meanwhile must hold nothing of theirs.
        assert_no_leak(json.dumps(await frames_of_a_whole_run(ws, own_agent)), owner)
    assert await snapshot(app, owner.user_id) == before
