"""The tools agents may be given: built-ins and the operator's MCP servers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from agentplatform.api.deps import CurrentPrincipal, ServicesDep

router = APIRouter(prefix="/api/tools", tags=["tools"])


class ToolPublic(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    available: bool
    reason: str | None


class ToolList(BaseModel):
    items: list[ToolPublic]
    next_cursor: None = None


@router.get("")
async def list_tools(principal: CurrentPrincipal, services: ServicesDep) -> ToolList:
    return ToolList(
        items=[
            ToolPublic(
                name=info.name,
                description=info.description,
                parameters=dict(info.parameters),
                available=info.available,
                reason=info.reason,
            )
            for info in services.tools.infos()
        ]
    )
