"""Refuses requests whose path or query carries a NUL or is not valid UTF-8.

No identifier or filter of ours contains either, and some databases refuse NUL in text, so
such a request is answered 400 at the door instead of failing deep inside a query.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


def _clean(raw: bytes) -> bool:
    decoded = unquote_to_bytes(raw)
    if b"\x00" in decoded:
        return False
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class RequestTextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogatepass")
            if not (_clean(path) and _clean(scope.get("query_string", b""))):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                error = {"code": "bad_request", "message": "The path or query is not valid text."}
                await JSONResponse({"error": error}, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)
