"""Guest sessions: creation, cookie and bearer, expiry, logout, the legacy validate route."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from agentplatform.api.deps import SESSION_COOKIE, Services
from agentplatform.security.tokens import hash_token
from agentplatform.store.tables import Session
from tests.conftest import GuestFactory


def services(app: FastAPI) -> Services:
    s: Services = app.state.services
    return s


async def test_guest_session_is_created_with_cookie(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/guest")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "user", "expires_at"}
    assert body["user"]["kind"] == "guest"
    assert len(body["token"]) >= 43  # 32 random bytes, base64url
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}={body['token']}")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert response.headers["cache-control"] == "no-store"


async def test_tokens_are_unique_and_stored_only_as_hash(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    tokens = [(await client.post("/api/auth/guest")).json()["token"] for _ in range(5)]
    assert len(set(tokens)) == 5
    async with services(app).db.transaction() as tx:
        stored = set((await tx.scalars(select(Session.token_hash))).all())
    for token in tokens:
        assert token not in stored
        assert hash_token(token) in stored


async def test_session_by_cookie_and_by_bearer(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/auth/guest")).json()
    by_cookie = await client.get("/api/auth/session")
    assert by_cookie.status_code == 200
    assert by_cookie.json()["user"] == created["user"]
    client.cookies.clear()
    assert (await client.get("/api/auth/session")).status_code == 401
    by_bearer = await client.get(
        "/api/auth/session", headers={"Authorization": f"Bearer {created['token']}"}
    )
    assert by_bearer.status_code == 200
    assert by_bearer.json()["user"]["id"] == created["user"]["id"]


async def test_missing_malformed_and_unknown_tokens_are_401(client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "Bearer " + "x" * 5000},
    ):
        response = await client.get("/api/auth/session", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "unauthorized"


async def test_x_user_id_header_is_never_identity(
    guest: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    me = (await guest.get("/api/auth/session")).json()["user"]["id"]
    response = await client.get("/api/agents", headers={"X-User-Id": me})
    assert response.status_code == 401


async def test_expired_session_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = (await client.post("/api/auth/guest")).json()
    async with services(app).db.transaction() as tx:
        await tx.execute(
            update(Session)
            .where(Session.token_hash == hash_token(created["token"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await client.get("/api/auth/session")).status_code == 401
    assert (await client.get(f"/api/auth/validate/{created['token']}")).status_code == 401


async def test_logout_revokes_the_session(client: httpx.AsyncClient) -> None:
    token = (await client.post("/api/auth/guest")).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    response = await client.post("/api/auth/logout", headers=bearer)
    assert response.status_code == 204
    assert (
        "Max-Age=0" in response.headers["set-cookie"]
        or "expires=" in response.headers["set-cookie"].lower()
    )
    assert (await client.get("/api/auth/session", headers=bearer)).status_code == 401
    assert (await client.post("/api/auth/logout", headers=bearer)).status_code == 401


async def test_logout_leaves_other_sessions_alone(new_guest: GuestFactory) -> None:
    first, second = await new_guest(), await new_guest()
    assert (await first.post("/api/auth/logout")).status_code == 204
    assert (await second.get("/api/auth/session")).status_code == 200


async def test_validate_route_for_original_clients(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/auth/guest")).json()
    client.cookies.clear()
    valid = await client.get(f"/api/auth/validate/{created['token']}")
    assert valid.status_code == 200
    assert valid.json()["user"]["id"] == created["user"]["id"]
    assert (await client.get("/api/auth/validate/nope")).status_code == 401
    assert (await client.get("/api/auth/validate/" + "y" * 300)).status_code in {401, 422}


async def test_session_ttl_is_configurable(database_urls: object) -> None:
    from agentplatform.app import create_app
    from agentplatform.config import Settings
    from agentplatform.store.db import Database
    from agentplatform.store.migrate import upgrade

    assert callable(database_urls)
    url = database_urls("sqlite")
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    app = create_app(Settings(database_url=url, session_ttl_days=2))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            body = (await c.post("/api/auth/guest")).json()
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=1, hours=23) < expires - datetime.now(UTC) <= timedelta(days=2)
