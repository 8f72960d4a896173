"""Cross-site request forgery: a state-changing request sent with the session cookie must come
from our own origin (or an allowed one). Requests with ``Authorization: Bearer`` carry no
ambient credential and are not checked; neither are requests with no session cookie.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class OriginCheckMiddleware:
    def __init__(self, app: ASGIApp, *, cookie_name: str, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.allowed = {origin.lower().rstrip("/") for origin in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        uses_cookie = f"{self.cookie_name}=" in headers.get("cookie", "")
        if uses_cookie and "authorization" not in headers and not self._same_origin(headers):
            body = {
                "error": {
                    "code": "forbidden",
                    "message": "Cross-site request refused: send it from the app's own origin.",
                }
            }
            await JSONResponse(body, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _same_origin(self, headers: Headers) -> bool:
        claimed = headers.get("origin") or headers.get("referer")
        if not claimed:
            return False
        origin = _origin_of(claimed)
        if origin is None:
            return False
        host = headers.get("host", "").lower()
        return origin in self.allowed or urlsplit(origin).netloc == host
