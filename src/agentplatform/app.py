"""Composition root: ``create_app(settings)`` wires concrete classes together. Nothing at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agentplatform import __version__
from agentplatform.api import agents, auth, conversations, health
from agentplatform.api.deps import Services
from agentplatform.api.errors import install as install_error_handlers
from agentplatform.config import Settings
from agentplatform.store.db import Database
from agentplatform.store.repositories import (
    AgentRepository,
    ConversationRepository,
    IdentityRepository,
    MessageRepository,
)


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    return Services(
        settings=settings,
        db=db,
        identity=IdentityRepository(db),
        agents=AgentRepository(db),
        conversations=ConversationRepository(db),
        messages=MessageRepository(db),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """A fresh application; build as many as you like (tests do)."""
    config = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(config)
        app.state.services = services
        try:
            yield
        finally:
            await services.db.dispose()

    app = FastAPI(
        title="agentplatform",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    install_error_handlers(app)
    for router in (health.router, auth.router, agents.router, conversations.router):
        app.include_router(router)
    return app
