"""A fake OpenAI-compatible server speaking the real wire protocol.

``POST /v1/chat/completions`` with ``stream: true`` answers ``data: {chunk}`` lines — a role
chunk, content / tool-call chunks (tool calls split across chunks by ``index``), a chunk with
``finish_reason``, a usage chunk with empty ``choices`` when ``stream_options.include_usage``
is set — then ``data: [DONE]``. ``GET /v1/models`` lists ``models``. Errors have the real
shape ``{"error": {"message", "type", "param", "code"}}`` with ``x-request-id`` and
``retry-after`` headers. Usage::

    with FakeOpenAI() as fake:
        fake.push(Script(text=["Hi"]), Script.error(429, error_code="insufficient_quota"))
        client = AsyncOpenAI(api_key="k", base_url=fake.url, max_retries=0)
"""

from __future__ import annotations

import json
import time
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

ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided"),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist"),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests"),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
}
QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details."


class FakeOpenAI(ScriptedFake):
    """Scripted stand-in for an OpenAI-compatible server; ``api_key`` set → others get 401."""

    def __init__(
        self,
        *args: Any,
        api_key: str | None = None,
        models: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.api_key = api_key
        self.models = ["gpt-4o-mini", "gpt-4o"] if models is None else models
        self.models_status: int | None = None  # answer GET /v1/models with this error

    @property
    def url(self) -> str:
        """The ``base_url`` to give the SDK (it ends in ``/v1``)."""
        return f"{self.origin}/v1"

    def reset(self) -> None:
        super().reset()
        self.models = ["gpt-4o-mini", "gpt-4o"]
        self.models_status = None

    async def route(self, record: RecordedRequest, receive: Receive, send: Send) -> None:
        if self.api_key is not None and record.headers.get("authorization") != (
            f"Bearer {self.api_key}"
        ):
            await self.error(send, 401, key=_sent_key(record.headers))
            return
        route = (record.method, record.path)
        if route == ("GET", "/v1/models"):
            await self._models(send)
        elif route == ("POST", "/v1/chat/completions"):
            await self._chat(record, receive, send)
        else:
            await self.error(send, 404, message=f"Unknown request URL: {record.path}")

    async def _models(self, send: Send) -> None:
        if self.models_status is not None:
            await self.error(send, self.models_status)
            return
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "system"}
            for m in self.models
        ]
        await self.send_json(send, 200, {"object": "list", "data": data})

    async def _chat(self, record: RecordedRequest, receive: Receive, send: Send) -> None:
        body = record.body
        if not isinstance(body, dict) or "model" not in body or "messages" not in body:
            await self.error(send, 400, message="model and messages are required")
            return
        if body.get("stream") is not True:
            await self.error(send, 400, message="fake: only stream: true is supported")
            return
        script = self.next_script(record)
        if script is None:
            await self.error(send, 400, message="fake: no script queued")
            return
        if script.status is not None:
            await self.error(send, script.status, script=script)
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        frames = _frames(script, str(body["model"]), include_usage)
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}"}
        await self.stream(record, script, headers, frames, receive, send)

    async def error(
        self,
        send: Send,
        status: int,
        *,
        script: Script | None = None,
        message: str | None = None,
        key: str = "",
    ) -> None:
        err_type, code, text = ERRORS.get(status, ("server_error", None, "Error"))
        if script is not None:
            code = script.error_code or code
            if code == "insufficient_quota":
                err_type, text = "insufficient_quota", QUOTA_MESSAGE
            err_type = script.error_type or err_type
            text = script.error_message or text
        if status == 401 and key:
            text = f"Incorrect API key provided: {_mask(key)}."
        error = {"message": message or text, "type": err_type, "param": None, "code": code}
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}"}
        if script is not None and script.retry_after is not None:
            headers["retry-after"] = str(script.retry_after)
        await self.send_json(send, status, {"error": error}, headers)


def _sent_key(headers: dict[str, str]) -> str:
    auth = headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else ""


def _mask(key: str) -> str:
    """How OpenAI echoes a wrong key: its start and end around asterisks."""
    return key[:3] + "*" * max(4, len(key) - 7) + key[-4:] if len(key) > 8 else "*" * len(key)


def _frames(script: Script, model: str, include_usage: bool) -> list[Frame]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, content: bool = False) -> Frame:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        data: dict[str, Any] = {**base, "choices": [choice]}
        if include_usage:
            data["usage"] = None
        return Frame(f"data: {json.dumps(data)}\n\n".encode(), content=content)

    frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
    frames += [chunk({"content": text}, content=True) for text in script.text]
    for index, call in enumerate(script.tool_calls):
        call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
        head = {"index": index, "id": call_id, "type": "function"}
        head["function"] = {"name": call.name, "arguments": ""}
        frames.append(chunk({"tool_calls": [head]}))
        for piece in split_text(json.dumps(dict(call.arguments)), call.pieces):
            part = {"index": index, "function": {"arguments": piece}}
            frames.append(chunk({"tool_calls": [part]}, content=True))
    if script.stream_error is not None:
        text = script.error_message or "The server had an error while processing your request."
        error = {"message": text, "type": script.stream_error, "param": None, "code": None}
        frames.append(Frame(f"data: {json.dumps({'error': error})}\n\n".encode()))
        return frames
    finish = script.finish_reason or ("tool_calls" if script.tool_calls else "stop")
    frames.append(chunk({}, finish))
    if include_usage:
        chunks = len(script.text) + sum(t.pieces for t in script.tool_calls)
        completion = script.output_tokens if script.output_tokens is not None else chunks
        usage = {
            "prompt_tokens": script.input_tokens,
            "completion_tokens": completion,
            "total_tokens": script.input_tokens + completion,
        }
        data = {**base, "choices": [], "usage": usage}
        frames.append(Frame(f"data: {json.dumps(data)}\n\n".encode()))
    frames.append(Frame(b"data: [DONE]\n\n"))
    return frames
