"""A fake Anthropic Messages API speaking the real wire protocol (``POST /v1/messages``).

Streams the exact SSE sequence the real API sends — ``message_start``, ``content_block_start``,
``ping``, ``content_block_delta`` (``text_delta`` / ``input_json_delta``),
``content_block_stop``, ``message_delta`` (stop reason, usage), ``message_stop`` — and answers
errors in the real shape ``{"type": "error", "error": {"type", "message"}, "request_id"}``
with ``request-id`` and ``retry-after`` headers. Usage::

    with FakeAnthropic() as fake:
        fake.push(Script(text=["Hel", "lo"]), Script.error(429, retry_after=1))
        client = AsyncAnthropic(api_key="k", base_url=fake.url, max_retries=0)
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.fakes.server import (
    Frame,
    Receive,
    RecordedRequest,
    Script,
    ScriptedFake,
    Send,
    split_text,
)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ERROR_MESSAGES = {
    "authentication_error": "invalid x-api-key",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
}


def sse(event: str, data: dict[str, Any]) -> Frame:
    return Frame(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


def _delta(index: int, delta: dict[str, Any]) -> Frame:
    data = {"type": "content_block_delta", "index": index, "delta": delta}
    return Frame(sse("content_block_delta", data).data, content=True)


class FakeAnthropic(ScriptedFake):
    """Scripted stand-in for api.anthropic.com; ``api_key`` set → other keys get a 401."""

    def __init__(self, *args: Any, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_key = api_key

    @property
    def url(self) -> str:
        """The ``base_url`` to give the SDK."""
        return self.origin

    async def route(self, record: RecordedRequest, receive: Receive, send: Send) -> None:
        if (record.method, record.path) != ("POST", "/v1/messages"):
            await self.error(send, 404, "not_found_error", f"Not found: {record.path}")
            return
        if self.api_key is not None and self.api_key not in _sent_keys(record.headers):
            await self.error(send, 401, "authentication_error", "invalid x-api-key")
            return
        body = record.body
        problem = _validate(body)
        if problem is not None:
            await self.error(send, 400, "invalid_request_error", problem)
            return
        script = self.next_script(record)
        if script is None:
            await self.error(send, 400, "invalid_request_error", "fake: no script queued")
            return
        if script.status is not None:
            err_type = script.error_type or ERROR_TYPES.get(script.status, "api_error")
            message = script.error_message or ERROR_MESSAGES.get(err_type, err_type)
            await self.error(send, script.status, err_type, message, script=script)
            return
        frames = _frames(script, str(body["model"]))
        await self.stream(record, script, {"request-id": _request_id()}, frames, receive, send)

    async def error(
        self,
        send: Send,
        status: int,
        err_type: str,
        message: str,
        *,
        script: Script | None = None,
    ) -> None:
        request_id = _request_id()
        error: dict[str, Any] = {"type": err_type, "message": message}
        if script is not None and script.error_code is not None:
            error["details"] = {"error_code": script.error_code}
        headers = {"request-id": request_id}
        if script is not None and script.retry_after is not None:
            headers["retry-after"] = _number(script.retry_after)
        if status == 529 or status >= 500 or status == 429:
            headers["x-should-retry"] = "true"
        payload = {"type": "error", "error": error, "request_id": request_id}
        await self.send_json(send, status, payload, headers)


def _sent_keys(headers: dict[str, str]) -> set[str]:
    keys = {headers.get("x-api-key", "")}
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        keys.add(auth[7:])
    return keys - {""}


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    if body.get("stream") is not True:
        return "fake: only stream: true is supported"
    return None


def _frames(script: Script, model: str) -> list[Frame]:
    chunks = len(script.text) + sum(t.pieces for t in script.tool_calls)
    output_tokens = script.output_tokens if script.output_tokens is not None else chunks
    message: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": script.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
            "service_tier": "standard",
        },
    }
    frames = [sse("message_start", {"type": "message_start", "message": message})]
    index = 0
    if script.text or not script.tool_calls:
        text_block: dict[str, Any] = {"type": "text", "text": ""}
        frames.append(_start(index, text_block))
        frames.append(sse("ping", {"type": "ping"}))
        frames += [_delta(index, {"type": "text_delta", "text": t}) for t in script.text]
        frames.append(_stop(index))
        index += 1
    for call in script.tool_calls:
        tool_id = call.id or f"toolu_{uuid.uuid4().hex[:24]}"
        block: dict[str, Any] = {"type": "tool_use", "id": tool_id, "name": call.name, "input": {}}
        frames.append(_start(index, block))
        empty = sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        )
        frames.append(empty)
        for piece in split_text(json.dumps(dict(call.arguments)), call.pieces):
            frames.append(_delta(index, {"type": "input_json_delta", "partial_json": piece}))
        frames.append(_stop(index))
        index += 1
    if script.stream_error is not None:
        message_text = script.error_message or ERROR_MESSAGES.get(script.stream_error, "Error")
        error = {"type": script.stream_error, "message": message_text}
        frames.append(sse("error", {"type": "error", "error": error}))
        return frames
    stop_reason = script.finish_reason or ("tool_use" if script.tool_calls else "end_turn")
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    usage = {"output_tokens": output_tokens}
    frames.append(sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    frames.append(sse("message_stop", {"type": "message_stop"}))
    return frames


def _start(index: int, block: dict[str, Any]) -> Frame:
    data = {"type": "content_block_start", "index": index, "content_block": block}
    return sse("content_block_start", data)


def _stop(index: int) -> Frame:
    return sse("content_block_stop", {"type": "content_block_stop", "index": index})


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
