"""Refuses JSON bodies nested deeper than a limit, or with a key given twice, before any
handler parses them.

A repeated key is refused because readers disagree on it (first wins here, last wins
there): what a proxy or a log sees must be what the server acts on.

Deep nesting costs a recursive parser stack, and validators walk it again; no request of
ours needs more than a few levels. The body (already size-limited) is scanned once, bytes
outside strings only, and handed on unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def json_depth(body: bytes, stop_after: int) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (stops counting past ``stop_after``)."""
    if body.count(b"[") + body.count(b"{") <= stop_after:
        return 0  # cannot be deeper than the number of openers
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_after:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


class RepeatedKey(ValueError):
    """A JSON object names the same key twice."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RepeatedKey(key)
        result[key] = value
    return result


def loads_unique(text: bytes | str) -> Any:
    """``json.loads`` that raises ``RepeatedKey`` when an object repeats a key."""
    return json.loads(text, object_pairs_hook=_unique_pairs)


def repeated_key(text: bytes | str) -> str | None:
    """The first key an object repeats, or None (also for text that is not JSON at all)."""
    try:
        loads_unique(text)
    except RepeatedKey as exc:
        return str(exc)
    except (ValueError, RecursionError):
        return None  # not JSON: the handler answers that
    return None


class JsonDepthMiddleware:
    def __init__(self, app: ASGIApp, *, max_depth: int = 32) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "json" not in Headers(scope=scope).get("content-type", ""):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = None
        if json_depth(body, self.max_depth) > self.max_depth:
            problem = f"JSON nested deeper than {self.max_depth} levels."
        elif repeated_key(body) is not None:
            problem = "A JSON object names the same key twice."
        if problem is not None:
            error = {"code": "invalid_input", "message": problem}
            await JSONResponse({"error": error}, status_code=422)(scope, receive, send)
            return
        replayed = _replay([{"type": "http.request", "body": body, "more_body": False}], receive)
        await self.app(scope, replayed, send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive
