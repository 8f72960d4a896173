"""Hostile path parameters and query strings on every operation of the OpenAPI document.

Ids are where user input meets a ``WHERE`` clause on every request, so each path parameter is
replaced in turn by bytes no id contains (invalid UTF-8, an encoded surrogate, 5,000
characters, traversal, quoting, NUL): the answer is a 4xx in the error envelope, never a 5xx.
Each query parameter gets the same treatment plus out-of-range numbers; a filter may match
nothing (200), but it never fails (5xx). The other parameters name the caller's real objects
and bodies are valid, so only the hostile value can be the reason for a refusal.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.hostile.conftest import (
    REQUEST_TIMEOUT,
    Owner,
    assert_envelope,
    server_log,
    snapshot,
    with_ids,
)
from tests.hostile.payloads import VALID_BODIES

# Raw, already percent-encoded path segments.
HOSTILE_IDS = {
    "invalid-utf8": "%FF%FE",
    "encoded-surrogate": "%ED%A0%80",
    "long": "x" * 5000,
    "traversal": "..%2F..%2Fetc%2Fpasswd",
    "backslash": "..%5C..%5Cwindows",
    "sql-quote": "%27%20OR%20%271%27%3D%271",
    "percent": "%25",
    "right-to-left": "%E2%80%AE",
    "space": "%20",
    "dots": "..",
}
NUL_ID = {"nul": "a%00b"}
# Raw, already percent-encoded query values.
HOSTILE_QUERY_VALUES = {
    **HOSTILE_IDS,
    "negative": "-1",
    "float-overflow": "1e400",
    "int-1000-digits": "1" + "0" * 1000,
    "empty": "",
}
NUL_QUERY = {"nul": "a%00b"}


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return sorted(
        (method.upper(), path, op) for path, ops in paths.items() for method, op in ops.items()
    )


def parameters(operation: dict[str, Any], where: str) -> list[str]:
    return [p["name"] for p in operation.get("parameters", []) if p["in"] == where]


async def call(
    client: httpx.AsyncClient, method: str, url: str, template: str, owner: Owner
) -> httpx.Response:
    body = with_ids(VALID_BODIES.get((method, template)), owner)
    async with asyncio.timeout(REQUEST_TIMEOUT):
        return await client.request(method, url, json=body)


async def hostile_path_failures(app: FastAPI, owner: Owner, values: dict[str, str]) -> list[str]:
    failures: list[str] = []
    for method, template, operation in operations(app):
        for name in parameters(operation, "path"):
            for label, raw in values.items():
                url = template.format(**{**owner.ids, name: raw})
                with server_log() as log:
                    response = await call(owner.client, method, url, template, owner)
                if not 400 <= response.status_code < 500:
                    failures.append(
                        f"{method} {url[:120]} ({name}={label}) -> {response.status_code} "
                        f"{response.text[:200]}\n{log.text()}"
                    )
                else:
                    assert_envelope(response)
    return failures


async def hostile_query_failures(app: FastAPI, owner: Owner, values: dict[str, str]) -> list[str]:
    failures: list[str] = []
    for method, template, operation in operations(app):
        for name in parameters(operation, "query"):
            for label, raw in values.items():
                url = f"{template.format(**owner.ids)}?{name}={raw}"
                with server_log() as log:
                    response = await call(owner.client, method, url, template, owner)
                if response.status_code >= 500:
                    failures.append(
                        f"{method} {url[:120]} ({label}) -> {response.status_code} "
                        f"{response.text[:200]}\n{log.text()}"
                    )
                elif response.status_code >= 400:
                    assert_envelope(response)
    return failures


async def test_hostile_ids_are_refused(app: FastAPI, owner: Owner) -> None:
    before = await snapshot(app, owner.user_id)
    failures = await hostile_path_failures(app, owner, HOSTILE_IDS)
    assert not failures, "\n".join(failures)
    assert await snapshot(app, owner.user_id) == before


async def test_nul_in_ids_is_refused(
    app: FastAPI, owner: Owner, request: pytest.FixtureRequest
) -> None:
    failures = await hostile_path_failures(app, owner, NUL_ID)
    assert not failures, "\n".join(failures)


async def test_hostile_query_values_never_fail(app: FastAPI, owner: Owner) -> None:
    failures = await hostile_query_failures(app, owner, HOSTILE_QUERY_VALUES)
    assert not failures, "\n".join(failures)


async def test_nul_in_query_values_never_fails(
    app: FastAPI, owner: Owner, request: pytest.FixtureRequest
) -> None:
    failures = await hostile_query_failures(app, owner, NUL_QUERY)
    assert not failures, "\n".join(failures)
