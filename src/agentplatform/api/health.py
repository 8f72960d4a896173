"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from agentplatform.api.deps import ServicesDep
from agentplatform.api.errors import DB_RETRY_AFTER

router = APIRouter(tags=["health"])
log = logging.getLogger("agentplatform.health")


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive. Touches nothing else, so a slow database never kills the pod."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "A dependency is unreachable."}})
async def ready(services: ServicesDep) -> JSONResponse:
    """Ready to serve: the database answered a round trip."""
    try:
        await services.db.ping()
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log
        log.warning("readiness check failed: %s", type(exc).__name__)
        return JSONResponse(
            {"status": "unavailable", "checks": {"database": "unreachable"}},
            status_code=503,
            headers={"Retry-After": str(DB_RETRY_AFTER)},
        )
    return JSONResponse({"status": "ready", "checks": {"database": "ok"}})
