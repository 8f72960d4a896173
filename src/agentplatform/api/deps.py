"""Request dependencies: the services the app was built with, and the caller's identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.requests import HTTPConnection

from agentplatform.config import Settings
from agentplatform.domain.identity import Principal
from agentplatform.errors import Unauthorized
from agentplatform.observability.metrics import Metrics
from agentplatform.providers.registry import ProviderRegistry
from agentplatform.runtime.bus import EventBus
from agentplatform.runtime.runner import Runner
from agentplatform.security.policy import Limits
from agentplatform.security.ratelimit import Budget
from agentplatform.store.db import Database
from agentplatform.store.repositories import (
    AgentRepository,
    ConversationRepository,
    IdentityRepository,
    MessageRepository,
    RunRepository,
)
from agentplatform.store.repositories.usage import UsageRepository
from agentplatform.tools.base import ToolRegistry

SESSION_COOKIE = "agentplatform_session"
MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a request handler may use; built once per app in ``app.py``."""

    settings: Settings
    db: Database
    identity: IdentityRepository
    agents: AgentRepository
    conversations: ConversationRepository
    messages: MessageRepository
    runs: RunRepository
    registry: ProviderRegistry
    bus: EventBus
    runner: Runner
    tools: ToolRegistry
    limits: Limits
    usage: UsageRepository
    metrics: Metrics


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def presented_token(request: HTTPConnection) -> str | None:
    """The bearer token if an Authorization header is sent, else the session cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Use 'Authorization: Bearer <token>'.")
        return token.strip()
    return request.cookies.get(SESSION_COOKIE)


async def resolve_token(services: Services, token: str | None) -> Principal:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized()
    principal = await services.identity.resolve(token)
    if principal is None:
        raise Unauthorized("The session is missing, expired or revoked.")
    return principal


async def current_principal(request: Request, services: ServicesDep) -> Principal:
    principal = await resolve_token(services, presented_token(request))
    request.state.user_id = principal.user_id  # the access log records it, hashed
    await services.limits.enforce(Budget.USER, principal.user_id, request.scope)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the last page.")]
