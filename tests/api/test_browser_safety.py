"""Headers on every response, CSRF on cookie requests, body size and JSON depth limits."""

from __future__ import annotations

import httpx
import pytest

from agentplatform.api.deps import SESSION_COOKIE
from agentplatform.security.json_depth import json_depth


async def test_security_headers_everywhere(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/health"),
        await client.get("/api/agents"),  # 401
        await client.get("/api/nothing"),  # 404
        await client.post("/api/auth/guest"),
    ):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "camera=()" in headers["permissions-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "strict-transport-security" not in headers  # plain HTTP here


async def test_html_keeps_its_own_strict_policy(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


async def test_cookie_requests_need_our_origin(client: httpx.AsyncClient) -> None:
    await client.post("/api/auth/guest")  # the client now holds the session cookie
    assert SESSION_COOKIE in client.cookies
    body = {"name": "Forged"}
    forged = await client.post("/api/agents", json=body, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "forbidden"
    no_origin = await client.post("/api/agents", json=body, headers={"Origin": ""})
    assert no_origin.status_code == 403
    ours = await client.post("/api/agents", json=body, headers={"Origin": "http://testserver"})
    assert ours.status_code == 201
    by_referer = await client.post(
        "/api/agents", json=body, headers={"Referer": "http://testserver/static/dashboard.html"}
    )
    assert by_referer.status_code == 201
    listed = (await client.get("/api/agents")).json()["items"]  # reads are not checked
    assert [a["name"] for a in listed] == ["Forged", "Forged"]
    logout = await client.post("/api/auth/logout", headers={"Origin": "https://evil.example"})
    assert logout.status_code == 403


async def test_bearer_requests_are_not_csrf_checked(guest: httpx.AsyncClient) -> None:
    response = await guest.post(
        "/api/agents", json={"name": "API client"}, headers={"Origin": "https://elsewhere.example"}
    )
    assert response.status_code == 201


async def test_oversized_bodies_are_413(guest: httpx.AsyncClient) -> None:
    huge = {"name": "x", "description": "d" * (2 * 1024 * 1024)}
    response = await guest.post("/api/agents", json=huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert (await guest.get("/health")).status_code == 200


@pytest.mark.parametrize("opener", ["[", '{"a":'])
async def test_deep_json_is_refused_before_parsing(guest: httpx.AsyncClient, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    body = opener * 10_000 + "1" + closer * 10_000
    response = await guest.post(
        "/api/agents", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


def test_depth_scan_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 8) <= 1
    assert json_depth(b'{"a": "\\"[[[[[[[[[[[[", "b": [[1]]}', 8) == 3
    assert json_depth(b"[" * 50 + b"]" * 50, 32) > 32


async def test_streamed_bodies_without_length_are_capped_too(guest: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"name": "x", "description": "'
        for _ in range(40):
            yield b"d" * 65_536
        yield b'"}'

    response = await guest.post(
        "/api/agents", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
