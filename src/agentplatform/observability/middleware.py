"""Per-request telemetry (pure ASGI): request id, route template, status, latency.

Every HTTP request gets an id — the caller's ``X-Request-ID`` when it is sane, else a fresh
one — echoed in the response header, available as ``request.state.request_id`` and stamped on
every log line written while it is served. When the answer is complete the request is counted
(``http_requests_total``, ``http_request_duration_seconds``) and logged once. WebSocket
connections move the open-connections gauge and get one line when they close.

Labels use the route *template* FastAPI matched (``/api/agents/{agent_id}``), never the raw
path; a path no route matched is ``unmatched``. The user is read from
``request.state.user_id`` (set by the auth dependency) and only ever logged hashed.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Match, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentplatform.observability.logging import REQUEST_ID, log_request
from agentplatform.observability.metrics import UNMATCHED, Metrics

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Probes and scrapes arrive every few seconds; their successes are logged at DEBUG only.
QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics"})


def request_id_of(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` if it is short and plain, else a new random id."""
    incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
    return incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex


def route_template(scope: Scope, probe: Scope | None = None) -> str:
    """The template of the route that served ``scope`` (call after the app has run).

    FastAPI records the matched route in the scope. Routes it does not record (plain Starlette
    routes such as the OpenAPI document, mounts) are matched again against ``probe``, a copy
    of the scope taken before routing changed it.
    """
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    for candidate in (context, scope.get("route")):  # the first knows include() prefixes
        template = getattr(candidate, "path_format", None)
        if isinstance(template, str) and template:
            return template
    router = scope.get("router")
    if probe is not None and router is not None:
        for route in getattr(router, "routes", ()):
            if isinstance(route, Route | WebSocketRoute | Mount):
                match, _ = route.matches(probe)
                if match is Match.FULL:
                    return route.path_format
    return UNMATCHED


def _probe(scope: Scope) -> Scope:
    keys = ("type", "path", "raw_path", "root_path", "method", "headers", "scheme")
    return {key: scope[key] for key in keys if key in scope}


def _client_ip(scope: Scope, state: dict[str, Any]) -> str | None:
    """The address the rate limiter resolved (trusted proxies), else the socket's peer."""
    resolved = state.get("client_ip")
    if isinstance(resolved, str):
        return resolved
    client = scope.get("client")
    return str(client[0]) if client else None


def _user_id(state: dict[str, Any]) -> str | None:
    user_id = state.get("user_id")
    return user_id if isinstance(user_id, str) else None


class TelemetryMiddleware:
    """Install outermost, so refusals by other middleware are measured and logged too."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = request_id_of(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        probe = _probe(scope)
        status = 500  # unless the app answers: an exception is answered 500 further out

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            route = route_template(scope, probe)
            method = str(scope["method"])
            self.metrics.http_request(method, route, status, duration)
            quiet = route in QUIET_ROUTES and status < 400
            log_request(
                method=method,
                route=route,
                status=status,
                duration_s=duration,
                request_id=request_id,
                user_id=_user_id(state),
                client_ip=_client_ip(scope, state),
                level=logging.DEBUG if quiet else logging.INFO,
            )
            REQUEST_ID.reset(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = request_id_of(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        probe = _probe(scope)
        accepted = False

        async def send_with_id(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                headers = list(message.get("headers") or [])
                headers.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message = {**message, "headers": headers}
                accepted = True
                self.metrics.websocket_opened()
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if accepted:
                self.metrics.websocket_closed()
            log_request(
                method="WS",
                route=route_template(scope, probe),
                status=101 if accepted else 403,
                duration_s=time.perf_counter() - started,
                request_id=request_id,
                user_id=_user_id(state),
                client_ip=_client_ip(scope, state),
                event="websocket",
            )
            REQUEST_ID.reset(token)
