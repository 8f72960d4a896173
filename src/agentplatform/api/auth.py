"""Guest sessions: create, inspect, validate (for the original clients), log out."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request, Response, status

from agentplatform.api.deps import (
    MAX_TOKEN_LENGTH,
    SESSION_COOKIE,
    CurrentPrincipal,
    ServicesDep,
    resolve_token,
)
from agentplatform.api.schemas.auth import GuestSessionPublic, SessionPublic, UserPublic
from agentplatform.domain.identity import Principal

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _session_public(principal: Principal) -> SessionPublic:
    return SessionPublic(
        user=UserPublic(
            id=principal.user_id,
            kind=principal.kind,
            display_name=principal.display_name,
            created_at=principal.user_created_at,
        ),
        expires_at=principal.expires_at,
    )


@router.post("/guest", status_code=status.HTTP_201_CREATED)
async def create_guest(response: Response, services: ServicesDep) -> GuestSessionPublic:
    settings = services.settings
    token, principal = await services.identity.create_guest(settings.session_ttl)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    response.headers["Cache-Control"] = "no-store"
    session = _session_public(principal)
    return GuestSessionPublic(token=token, user=session.user, expires_at=session.expires_at)


@router.get("/session")
async def read_session(principal: CurrentPrincipal) -> SessionPublic:
    return _session_public(principal)


@router.get("/validate/{token}")
async def validate_token(
    services: ServicesDep,
    token: str = Path(max_length=MAX_TOKEN_LENGTH),
) -> SessionPublic:
    """Kept for the original clients, which validate a stored token this way."""
    return _session_public(await resolve_token(services, token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    await services.identity.revoke(principal.session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=services.settings.cookie_secure,
    )
    return response
