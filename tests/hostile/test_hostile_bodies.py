"""Malformed, oversized and deeply nested bodies on every mutating route.

The mutating routes come from the OpenAPI document (every POST/PATCH/PUT/DELETE). Those that
take a body must refuse each hostile payload with a 4xx in the error envelope, within a
deadline, and change nothing the caller owns; those that take none must at least never
answer 5xx or hang. ``VALID_BODIES`` holds one valid body per body-taking route (a new one
fails ``test_every_body_route_has_a_valid_body`` until it is added), so the field-level
attacks change exactly one value of an otherwise acceptable request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.hostile.conftest import (
    REQUEST_TIMEOUT,
    Owner,
    assert_envelope,
    guest_client,
    server_log,
    sign_in,
    snapshot,
    with_ids,
)
from tests.hostile.payloads import (
    MIB,
    NUL_VALUE,
    OVERSIZED,
    PAYLOADS,
    VALID_BODIES,
    Payload,
    duplicate_attacks,
    field_attacks,
)

MUTATING = {"POST", "PATCH", "PUT", "DELETE"}


def mutating_routes(app: FastAPI) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(routes taking a JSON body, routes taking none), from the OpenAPI document."""
    with_body: list[tuple[str, str]] = []
    without: list[tuple[str, str]] = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if method.upper() not in MUTATING:
                continue
            target = with_body if "requestBody" in operation else without
            target.append((method.upper(), path))
    return sorted(with_body), sorted(without)


async def send(
    client: httpx.AsyncClient, method: str, path: str, payload: Payload
) -> httpx.Response:
    headers = {} if payload.content_type is None else {"Content-Type": payload.content_type}
    async with asyncio.timeout(REQUEST_TIMEOUT):  # a hang fails here instead of stalling CI
        return await client.request(method, path, content=payload.body, headers=headers)


def assert_refused(response: httpx.Response, where: str, log: str) -> None:
    assert 400 <= response.status_code < 500, (
        where,
        response.status_code,
        response.text[:300],
        log,
    )
    assert_envelope(response)


async def test_every_body_route_has_a_valid_body(app: FastAPI, owner: Owner) -> None:
    with_body, _ = mutating_routes(app)
    assert set(with_body) == set(VALID_BODIES), set(with_body) ^ set(VALID_BODIES)
    for method, template in with_body:  # the valid bodies really are valid
        body = with_ids(VALID_BODIES[(method, template)], owner)
        response = await owner.client.request(method, template.format(**owner.ids), json=body)
        assert response.status_code < 300, (method, template, response.text)


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.id)
async def test_hostile_bodies_are_refused(app: FastAPI, owner: Owner, payload: Payload) -> None:
    with_body, _ = mutating_routes(app)
    before = await snapshot(app, owner.user_id)
    for method, template in with_body:
        with server_log() as log:
            response = await send(owner.client, method, template.format(**owner.ids), payload)
        assert_refused(response, f"{method} {template}", log.text())
    assert await snapshot(app, owner.user_id) == before


async def assert_field_attacks_refused(
    app: FastAPI, owner: Owner, attacks: Callable[[dict[str, Any]], list[Payload]]
) -> None:
    with_body, _ = mutating_routes(app)
    before = await snapshot(app, owner.user_id)
    failures: list[str] = []
    for method, template in with_body:
        body = with_ids(VALID_BODIES[(method, template)], owner)
        for payload in attacks(body):
            with server_log() as log:
                response = await send(owner.client, method, template.format(**owner.ids), payload)
            if not 400 <= response.status_code < 500:
                failures.append(
                    f"{method} {template} {payload.body[:120]!r} -> {response.status_code} "
                    f"{response.text[:200]}\n{log.text()}"
                )
            else:
                assert_envelope(response)
    assert not failures, "\n".join(failures)
    assert await snapshot(app, owner.user_id) == before


async def test_hostile_field_values_are_refused(app: FastAPI, owner: Owner) -> None:
    """Lone surrogates and huge numbers in each field of an otherwise valid body."""
    await assert_field_attacks_refused(app, owner, field_attacks)


async def test_nul_in_body_fields_is_refused(
    app: FastAPI, owner: Owner, request: pytest.FixtureRequest
) -> None:
    await assert_field_attacks_refused(app, owner, lambda body: field_attacks(body, NUL_VALUE))


async def test_duplicate_keys_are_refused(app: FastAPI, owner: Owner) -> None:
    """A key given twice is ambiguous (parsers disagree on which wins): refuse it."""
    await assert_field_attacks_refused(app, owner, duplicate_attacks)


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.id)
async def test_routes_without_a_body_survive_one(
    app: FastAPI, owner: Owner, payload: Payload
) -> None:
    _, without = mutating_routes(app)
    async with guest_client(app) as client:
        await sign_in(client)  # its own session: these routes include logout
        for method, template in without:
            path = template.format(agent_id="x", conversation_id="y", run_id="z")
            with server_log() as log:
                response = await send(client, method, path, payload)
            assert response.status_code < 500, (method, template, response.text[:300], log.text())
            if response.status_code >= 400:
                assert_envelope(response)


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if p.id in OVERSIZED], ids=lambda p: p.id)
async def test_bodies_over_the_limit_are_413(app: FastAPI, owner: Owner, payload: Payload) -> None:
    with_body, without = mutating_routes(app)
    for method, template in with_body + without:
        response = await send(owner.client, method, template.format(**owner.ids), payload)
        assert response.status_code == 413, (method, template, response.status_code)
        assert assert_envelope(response)["code"] == "payload_too_large"


async def test_a_chunked_body_over_the_limit_is_413(app: FastAPI, owner: Owner) -> None:
    """No Content-Length to check up front: the limit must count the bytes as they come."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(3):
            yield b"a" * MIB
        yield b'"}'

    async with asyncio.timeout(REQUEST_TIMEOUT):
        response = await owner.client.post(
            "/api/agents", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413, response.text[:300]
    assert_envelope(response)
