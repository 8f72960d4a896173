"""Limits at the edge of the API: per-address budgets, turn admission, agent quota, socket cap.

* ``RateLimitMiddleware`` counts every request by client address (``Budget.IP``; creating a
  guest session also spends ``Budget.GUEST_SESSIONS``) before any body is read or database
  touched, so a flood is refused cheaply. ``/health``, ``/ready``, ``/metrics`` and
  ``/static/`` are not counted. It also writes the ``RateLimit-Limit/-Remaining/-Reset``
  headers of the tightest budget the request met (see ``security/policy.py``).
* Per-user API requests are counted where the principal is resolved (``api/deps.py``).
* ``AdmitTurn`` guards every route that starts a model run, and ``admit_turn`` the WebSocket
  ``chat`` frame: the chat-message budget, the guest's daily quotas and the concurrent-run
  cap are checked *before* the run exists, so a refused turn never reaches a model.
* ``socket_slot`` holds one of the user's WebSocket connection slots. Over the cap the
  handshake is accepted, one ``error`` frame (``rate_limited``, ``retry_after``) says why, and
  the socket closes with 1013 (try again later): a browser cannot read why a handshake was
  refused, but it can read a frame.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import Depends, Request, WebSocket
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentplatform.api.deps import CurrentPrincipal, Services, ServicesDep
from agentplatform.api.errors import envelope
from agentplatform.domain.identity import Principal
from agentplatform.domain.ids import new_id
from agentplatform.errors import QuotaExceeded, RateLimited
from agentplatform.security.client_ip import rate_key
from agentplatform.security.policy import Limits, note, noted, refusal
from agentplatform.security.quotas import day_start, spent_agents, spent_turn
from agentplatform.security.ratelimit import Budget, Usage

EXEMPT_PATHS = frozenset({"/health", "/ready", "/metrics"})
EXEMPT_PREFIXES = ("/static/",)
GUEST_PATH = "/api/auth/guest"
CLIENT_IP_KEY = "client_ip"  # in scope["state"]: the access log reads it
RUN_RETRY_AFTER = 5.0  # a run's end cannot be predicted; this is a polite guess
SOCKET_RETRY_AFTER = 5
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008


def _limits(scope: Scope) -> Limits | None:
    services: Services | None = getattr(scope["app"].state, "services", None)
    return services.limits if services is not None else None


def client_address(scope: Scope, limits: Limits) -> str:
    peer = scope.get("client")
    forwarded = Headers(scope=scope).getlist("x-forwarded-for")
    return limits.addresses.resolve(peer[0] if peer else None, forwarded)


class RateLimitMiddleware:
    """Per-address budgets for HTTP requests and WebSocket handshakes; RateLimit headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits = _limits(scope) if scope["type"] in ("http", "websocket") else None
        if limits is None:
            await self.app(scope, receive, send)
            return
        address = client_address(scope, limits)
        scope.setdefault("state", {})[CLIENT_IP_KEY] = address
        path: str = scope["path"]
        exempt = path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)
        if exempt or not limits.limiter.enabled:
            await self.app(scope, receive, send)
            return
        key = rate_key(address)
        try:
            if scope["type"] == "http" and scope["method"] == "POST" and path == GUEST_PATH:
                message = "Too many guest sessions from this address; try again later."
                await limits.enforce(Budget.GUEST_SESSIONS, key, scope, message)
            await limits.enforce(Budget.IP, key, scope)
        except RateLimited as exc:
            await self._refuse(scope, receive, send, exc)
            return
        if scope["type"] == "http":
            send = self._with_headers(scope, send)
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, exc: RateLimited) -> None:
        if scope["type"] == "websocket":  # refused before the handshake: HTTP 403
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            return
        usage = noted(scope)
        headers = usage.headers() if usage is not None else {}
        headers["Retry-After"] = str(exc.retry_after or 1)
        response = envelope(exc.status, exc.code, exc.message, exc.details, headers)
        await response(scope, receive, send)

    @staticmethod
    def _with_headers(scope: Scope, send: Send) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                usage = noted(scope)
                if usage is not None:
                    headers = MutableHeaders(scope=message)
                    for name, value in usage.headers().items():
                        headers[name] = value
            await send(message)

        return send_with_headers


async def admit_turn(services: Services, principal: Principal, scope: Scope | None = None) -> None:
    """Raises ``RateLimited``/``QuotaExceeded`` unless ``principal`` may start a turn now."""
    limits = services.limits
    await limits.enforce(Budget.CHAT, principal.user_id, scope, "Too many messages; slow down.")
    quotas = limits.quotas
    metered = quotas.applies_to(principal.kind) and bool(
        quotas.messages_per_day or quotas.tokens_per_day
    )
    if not metered and not limits.runs_per_user:
        return
    now = datetime.now(UTC)
    usage = await services.usage.runs(principal.user_id, since=day_start(now))
    if metered:
        spent = spent_turn(quotas, messages=usage.messages, tokens=usage.tokens, now=now)
        if spent is not None:
            note(scope, spent.usage)
            limits.refused(spent.name)
            raise QuotaExceeded(
                spent.message,
                details={"quota": spent.name, "limit": spent.usage.limit},
                retry_after=spent.usage.retry_after,
            )
    if limits.runs_per_user and usage.active >= limits.runs_per_user:
        busy = Usage(
            limit=limits.runs_per_user, remaining=0, reset_after=RUN_RETRY_AFTER, allowed=False
        )
        note(scope, busy)
        limits.refused("runs_user")
        message = f"{usage.active} runs are still going; wait for one to finish."
        raise refusal(busy, message, "runs_user")


async def _admit_turn(request: Request, principal: CurrentPrincipal, services: ServicesDep) -> None:
    await admit_turn(services, principal, request.scope)


async def _admit_agent(principal: CurrentPrincipal, services: ServicesDep) -> None:
    quotas = services.limits.quotas
    if not quotas.agents or not quotas.applies_to(principal.kind):
        return
    spent = spent_agents(quotas, await services.usage.agents(principal.user_id))
    if spent is not None:  # no Retry-After: time does not help, deleting an agent does
        services.limits.refused(spent.name)
        details = {"quota": spent.name, "limit": spent.usage.limit}
        raise QuotaExceeded(spent.message, details=details)


AdmitTurn = Depends(_admit_turn)
AdmitAgent = Depends(_admit_agent)


@contextlib.asynccontextmanager
async def socket_slot(services: Services, principal: Principal) -> AsyncIterator[bool]:
    """Holds one of the user's WebSocket slots while inside; yields False when none is free."""
    limits = services.limits
    slot = limits.limiter.slot("ws", principal.user_id, new_id(), limits.sockets_per_user)
    async with slot as granted:
        yield granted


async def refuse_socket(websocket: WebSocket, services: Services) -> None:
    """After ``accept``: one ``error`` frame saying why, then close 1013 (try again later)."""
    cap = services.limits.sockets_per_user
    services.limits.refused("ws_user")
    await websocket.send_json(
        {
            "type": "error",
            "code": RateLimited.code,
            "message": f"At most {cap} connections per user; close one and try again.",
            "retry_after": SOCKET_RETRY_AFTER,
        }
    )
    await websocket.close(code=TRY_AGAIN_LATER)
