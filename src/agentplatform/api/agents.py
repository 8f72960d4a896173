"""Agents: create, list (filter, search, page), read, update, delete. Owner-scoped."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from agentplatform.api.deps import CurrentPrincipal, Cursor, Limit, Services, ServicesDep
from agentplatform.api.limits import AdmitAgent
from agentplatform.api.schemas.agents import AgentCreate, AgentPublic, AgentUpdate, Status
from agentplatform.api.schemas.common import ListPublic
from agentplatform.errors import InvalidInput

router = APIRouter(prefix="/api/agents", tags=["agents"])

FALLBACK_MODEL = "local:gemma-3-270m"


def _usable(services: Services, model: str) -> str:
    if not services.registry.is_usable(model):
        detail = {
            "loc": ["body", "model"],
            "msg": "no configured provider serves this model; see GET /api/models",
            "type": "model_unavailable",
        }
        raise InvalidInput(details=[detail])
    return model


def _known_tools(services: Services, names: list[str]) -> None:
    unknown = [name for name in names if services.tools.get(name) is None]
    if unknown:
        detail = {
            "loc": ["body", "tools"],
            "msg": f"unknown tools: {', '.join(unknown)}; see GET /api/tools",
            "type": "unknown_tool",
        }
        raise InvalidInput(details=[detail])


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[AdmitAgent])
async def create_agent(
    body: AgentCreate, principal: CurrentPrincipal, services: ServicesDep
) -> AgentPublic:
    fields = body.model_dump()
    _known_tools(services, body.tools)
    if body.model:
        fields["model"] = _usable(services, body.model)
    else:
        fields["model"] = services.registry.default_ref() or FALLBACK_MODEL
    agent = await services.agents.create(principal.user_id, fields)
    return AgentPublic.model_validate(agent)


@router.get("")
async def list_agents(
    principal: CurrentPrincipal,
    services: ServicesDep,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    status: Status | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ListPublic[AgentPublic]:
    page = await services.agents.list(
        principal.user_id,
        tag=tag.strip().lower() if tag else None,
        status=status,
        q=q.strip() if q else None,
        limit=limit,
        cursor=cursor,
    )
    return ListPublic[AgentPublic](
        items=[AgentPublic.model_validate(a) for a in page.items], next_cursor=page.next_cursor
    )


@router.get("/{agent_id}")
async def read_agent(
    agent_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> AgentPublic:
    return AgentPublic.model_validate(await services.agents.get(principal.user_id, agent_id))


@router.patch("/{agent_id}")
async def update_agent(
    agent_id: str, body: AgentUpdate, principal: CurrentPrincipal, services: ServicesDep
) -> AgentPublic:
    changes = body.model_dump(exclude_unset=True)
    if "model" in changes:
        _usable(services, changes["model"])
    if "tools" in changes:
        _known_tools(services, changes["tools"])
    agent = await services.agents.update(principal.user_id, agent_id, changes)
    return AgentPublic.model_validate(agent)


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_agent(
    agent_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    await services.agents.delete(principal.user_id, agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
