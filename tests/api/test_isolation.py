"""Owner isolation: a second user trying every ``{id}`` route sees 404 and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from agentplatform.api.deps import Services
from tests.conftest import GuestFactory

# A body that would be valid for each mutating route, so only ownership can refuse it.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "/api/agents/{agent_id}": {"name": "Stolen", "status": "archived"},
    "/api/conversations/{conversation_id}": {"title": "Stolen"},
    "/api/agents/{agent_id}/chat": {"content": "Tell me your secrets"},
    "/api/agents/{agent_id}/runs": {"input": "Tell me your secrets"},
}
PLACEHOLDERS = {"agent_id": "x", "conversation_id": "y", "run_id": "z"}


def id_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) with a path parameter, read from the app's own OpenAPI document."""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        if "{" not in path or path.startswith("/api/auth/"):
            continue  # auth routes take a token, not an object id (covered in test_auth)
        routes += [(method.upper(), path) for method in sorted(operations)]
    return routes


async def owned_objects(owner: httpx.AsyncClient, app: FastAPI) -> dict[str, str]:
    agent = (await owner.post("/api/agents", json={"name": "Private", "tags": ["secret"]})).json()
    conversation = (
        await owner.post("/api/conversations", json={"agent_id": agent["id"], "title": "Mine"})
    ).json()
    chat = await owner.post(
        f"/api/agents/{agent['id']}/chat",
        json={"content": "private words", "conversation_id": conversation["id"]},
    )
    assert chat.status_code == 200 and "event: done" in chat.text
    services: Services = app.state.services
    run_id = chat.text.split('"run_id": "', 1)[1].split('"', 1)[0]
    await services.runner.wait(run_id)
    return {"agent_id": agent["id"], "conversation_id": conversation["id"], "run_id": run_id}


async def snapshot(owner: httpx.AsyncClient, ids: dict[str, str]) -> list[Any]:
    paths = [
        f"/api/agents/{ids['agent_id']}",
        f"/api/conversations/{ids['conversation_id']}",
        f"/api/conversations/{ids['conversation_id']}/messages",
        f"/api/runs/{ids['run_id']}",
        "/api/agents",
        "/api/conversations",
    ]
    return [(await owner.get(path)).json() for path in paths]


async def test_every_id_route_is_covered(app: FastAPI) -> None:
    """Fails when a new ``{id}`` route appears that this module does not know how to fill."""
    for _, path in id_routes(app):
        assert any("{" + name + "}" in path for name in PLACEHOLDERS), path


async def test_other_users_objects_are_404_and_untouched(
    new_guest: GuestFactory, app: FastAPI
) -> None:
    owner, intruder = await new_guest(), await new_guest()
    ids = await owned_objects(owner, app)
    before = await snapshot(owner, ids)
    tried = 0
    for method, template in id_routes(app):
        path = template.format(**ids)
        body = VALID_BODIES.get(template) if method in {"PATCH", "PUT", "POST"} else None
        response = await intruder.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
        unknown = template.format(**PLACEHOLDERS)
        missing = await intruder.request(method, unknown, json=body)
        assert missing.status_code == 404
        assert missing.json() == response.json()  # indistinguishable from a missing object
        tried += 1
    assert tried >= 12
    assert await snapshot(owner, ids) == before


async def test_other_users_objects_do_not_leak_into_lists(
    new_guest: GuestFactory, app: FastAPI
) -> None:
    owner, intruder = await new_guest(), await new_guest()
    ids = await owned_objects(owner, app)
    assert (await intruder.get("/api/agents")).json()["items"] == []
    assert (await intruder.get("/api/agents", params={"tag": "secret"})).json()["items"] == []
    assert (await intruder.get("/api/agents", params={"q": "Private"})).json()["items"] == []
    listed = await intruder.get("/api/conversations", params={"agent_id": ids["agent_id"]})
    assert listed.json()["items"] == []
    assert (await intruder.get("/api/conversations")).json()["items"] == []


async def test_cannot_attach_a_conversation_to_another_users_agent(
    new_guest: GuestFactory, app: FastAPI
) -> None:
    owner, intruder = await new_guest(), await new_guest()
    ids = await owned_objects(owner, app)
    response = await intruder.post("/api/conversations", json={"agent_id": ids["agent_id"]})
    assert response.status_code == 404
