"""Composition root: ``create_app(settings)`` wires concrete classes together. Nothing at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agentplatform import __version__
from agentplatform.api import agents, auth, conversations, health, models, runs, web, ws
from agentplatform.api import metrics as metrics_api
from agentplatform.api import tools as tools_api
from agentplatform.api.deps import SESSION_COOKIE, Services
from agentplatform.api.errors import install as install_error_handlers
from agentplatform.api.limits import RateLimitMiddleware
from agentplatform.api.schemas.common import ERROR_RESPONSES
from agentplatform.config import Settings
from agentplatform.observability.metrics import Metrics
from agentplatform.observability.middleware import TelemetryMiddleware
from agentplatform.observability.runs import RunTelemetry
from agentplatform.providers.registry import ProviderRegistry, build_registry
from agentplatform.runtime.bus import MemoryBus
from agentplatform.runtime.cancel import MemoryCancels
from agentplatform.runtime.runner import Runner
from agentplatform.security.body_limit import BodyLimitMiddleware
from agentplatform.security.csrf import OriginCheckMiddleware
from agentplatform.security.headers import SecurityHeadersMiddleware
from agentplatform.security.json_depth import JsonDepthMiddleware
from agentplatform.security.policy import Limits
from agentplatform.security.request_text import RequestTextMiddleware
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
from agentplatform.tools.builtin import builtin_tools
from agentplatform.tools.mcp import McpServers
from agentplatform.tools.mcp_config import load_mcp_config

log = logging.getLogger("agentplatform")


def build_services(
    settings: Settings,
    registry: ProviderRegistry | None = None,
    tools: ToolRegistry | None = None,
    *,
    metrics: Metrics | None = None,
) -> Services:
    metrics = metrics or Metrics()
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    run_repository = RunRepository(db)
    providers = registry or build_registry(settings)
    bus = MemoryBus()
    tool_registry = tools or ToolRegistry(
        builtin_tools(
            workspace_dir=settings.workspace_dir, http_allow_hosts=settings.http_fetch_allow_hosts
        )
    )
    runner = Runner(
        run_repository,
        providers,
        bus,
        MemoryCancels(),
        tool_registry,
        heartbeat=settings.run_heartbeat_seconds,
        lease=settings.run_lease_seconds,
        observer=RunTelemetry(metrics),
    )
    metrics.known_providers(providers.providers)
    return Services(
        settings=settings,
        db=db,
        identity=IdentityRepository(db),
        agents=AgentRepository(db),
        conversations=ConversationRepository(db),
        messages=MessageRepository(db),
        runs=run_repository,
        registry=providers,
        bus=bus,
        runner=runner,
        tools=tool_registry,
        metrics=metrics,
        limits=Limits.from_settings(settings, on_refused=metrics.rate_limited),
        usage=UsageRepository(db),
    )


async def _sweep(services: Services) -> None:
    """Periodically end runs whose process died (another replica's, or this one's before)."""
    interval = services.settings.run_lease_seconds / 2
    while True:
        await asyncio.sleep(interval)
        try:
            await services.runner.recover(all_active=False)
        except Exception:  # a database blip must not kill the sweeper
            log.warning("run sweeper failed; retrying", exc_info=True)


def create_app(
    settings: Settings | None = None,
    *,
    registry: ProviderRegistry | None = None,
    tools: ToolRegistry | None = None,
) -> FastAPI:
    """A fresh application; build as many as you like (tests do)."""
    config = settings or Settings()
    # Read the operator's MCP file now, so a bad one stops start-up with a clear message.
    mcp_config = load_mcp_config(config.mcp_config) if config.mcp_config else None

    app_metrics = Metrics()  # this app's own registry: many apps may live in one process

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(config, registry, tools, metrics=app_metrics)
        app.state.services = services
        app_metrics.watch_pool(services.db.engine.pool)
        for tool in [services.tools.get(name) for name in services.tools.names()]:
            if tool is not None:  # self-tests (the sandbox's) run once, off the event loop
                await asyncio.to_thread(tool.unavailable_reason)
        mcp = McpServers(mcp_config) if mcp_config else None
        if mcp is not None:
            await mcp.start()  # never raises: a server that fails is logged, its tools unavailable
            for tool in mcp.tools():
                services.tools.register(tool)
        try:
            await services.registry.list_models()  # learns servers' model names for defaults
        except Exception:
            log.warning("could not list models at start-up", exc_info=True)
        try:
            # With SQLite there is one process: whatever it left running is over.
            await services.runner.recover(all_active=services.db.is_sqlite)
        except Exception:
            log.warning("could not recover abandoned runs at start-up", exc_info=True)
        sweeper = asyncio.create_task(_sweep(services))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await services.runner.aclose()
            if mcp is not None:
                await mcp.aclose()
            await services.bus.aclose()
            await services.limits.aclose()
            if registry is None:
                await services.registry.aclose()
            app_metrics.watch_pool(None)
            await services.db.dispose()

    app = FastAPI(
        title="agentplatform",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        responses=ERROR_RESPONSES,
    )
    # Added last = outermost: headers go on every response, even refusals.
    app.add_middleware(JsonDepthMiddleware, max_depth=config.max_json_depth)
    app.add_middleware(RequestTextMiddleware)
    app.add_middleware(
        OriginCheckMiddleware, cookie_name=SESSION_COOKIE, allowed=config.allowed_origins
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(RateLimitMiddleware)  # before bodies are read or the db is touched
    app.add_middleware(SecurityHeadersMiddleware, hsts=config.cookie_secure)
    app.add_middleware(TelemetryMiddleware, metrics=app_metrics)  # measures even refusals
    app.state.metrics = app_metrics  # for middleware built before the lifespan (rate limits)
    install_error_handlers(app)
    for router in (
        health.router,
        metrics_api.router,
        auth.router,
        agents.router,
        conversations.router,
        models.router,
        runs.router,
        tools_api.router,
        ws.router,
        web.router,
    ):
        app.include_router(router)
    return app
