"""Structured logs: one JSON object per line for log collectors, a readable line on a terminal.

``configure_logging`` installs one handler on the root logger (uvicorn's loggers propagate to
it), so every line of the process has the same shape::

    {"ts": "2025-01-01T12:00:00.123Z", "level": "info", "logger": "agentplatform.access",
     "msg": "GET /api/agents/{agent_id} 200", "event": "http_request", "request_id": "…", …}

Structured fields travel in ``extra={"fields": {...}}``; the id of the request being served is
added to every line logged while serving it (and by the runs it started). What never goes to a
log: request bodies, tokens, cookies, ``Authorization`` headers, API keys, raw user ids (only
``hash_user_id``). As a last line of defence the handler also blanks any configured secret
value that still reaches it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, SecretStr

from agentplatform.runtime.observer import RunReport

LogFormat = Literal["auto", "json", "text"]

REQUEST_ID: ContextVar[str | None] = ContextVar("agentplatform_request_id", default=None)
ACCESS_LOGGER = "agentplatform.access"
RUN_LOGGER = "agentplatform.runs"
REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8  # shorter values would blank ordinary words
_RESERVED = ("ts", "level", "logger", "msg")
_IN_MESSAGE = frozenset({"method", "route", "status", "run_id"})  # not repeated on a terminal
# Libraries that log URLs, headers, SQL parameters or payloads at INFO/DEBUG: only their
# warnings are wanted, whatever the level.
_NOISY = (
    "httpx", "httpx2", "httpcore", "httpcore2", "anthropic", "openai", "mcp", "asyncio",
    "aiosqlite", "asyncpg", "sqlalchemy", "websockets", "multipart", "python_multipart",
)  # fmt: skip


def secret_values(settings: BaseModel) -> list[str]:
    """Every secret in ``settings``: ``SecretStr`` fields and passwords inside URLs."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            if password:
                found += [password, unquote(password)]
    return [value for value in found if value]


def hash_user_id(user_id: str) -> str:
    """A stable pseudonym for a user in logs: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    extra = getattr(record, "fields", None)
    if isinstance(extra, Mapping):
        fields.update({k: v for k, v in extra.items() if k not in _RESERVED})
    request_id = getattr(record, "request_id", None)
    if request_id is not None and "request_id" not in fields:
        fields["request_id"] = request_id
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        payload: dict[str, Any] = {
            "ts": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update(_fields(record))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``12:00:00.123 INFO    agentplatform.access  GET /health 200  duration_ms=0.4 …``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s  %(message)s", "%X")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        message = record.getMessage()
        fields = {
            key: value
            for key, value in _fields(record).items()
            if key != "event" and not (key in _IN_MESSAGE and str(value) in message)
        }
        if not fields:
            return line
        pairs = " ".join(f"{key}={value}" for key, value in fields.items())
        head, sep, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{head}  {pairs}{sep}{rest}"


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter and blanks secret values anywhere in its output (tracebacks too)."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        for secret in self.secrets:
            line = line.replace(secret, REDACTED)
        return line


class RequestContext(logging.Filter):
    """Stamps each record with the id of the request being served, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class DropLeakyLines(logging.Filter):
    """Drops what uvicorn would otherwise write that can carry secrets or raw ids.

    - the WebSocket wire trace (DEBUG, from the ``websockets`` library through
      ``uvicorn.error``): every handshake header, ``Authorization`` and cookies included, and
      every frame's content;
    - uvicorn's ``"WebSocket /path" [accepted]`` lines: the raw path can hold a user id
      (``/workspace/{user_id}``); the telemetry middleware logs the route template instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("uvicorn"):
            return True
        if record.levelno < logging.INFO and "websockets" in record.pathname:
            return False
        return not (isinstance(record.msg, str) and '"WebSocket %s"' in record.msg)


class _Ours(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler ``configure_logging`` installed, so calling it again replaces it."""


def configure_logging(
    level: str = "info",
    fmt: LogFormat = "auto",
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> logging.Handler:
    """Route every logger of the process to one handler on ``stream`` (default stderr).

    ``auto`` writes readable lines when ``stream`` is a terminal and JSON lines otherwise.
    Returns the handler (tests read what it wrote).
    """
    out = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "text" if _is_tty(out) else "json"
    inner: logging.Formatter = TextFormatter() if fmt == "text" else JsonFormatter()
    handler = _Ours(out)
    handler.setFormatter(RedactingFormatter(inner, secrets))
    handler.addFilter(RequestContext())
    handler.addFilter(DropLeakyLines())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Ours)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)  # the root's level; uvicorn.run may lower it
    logging.getLogger("uvicorn.access").disabled = True  # our access lines replace its own
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


def log_request(
    *,
    method: str,
    route: str,
    status: int,
    duration_s: float,
    request_id: str,
    user_id: str | None,
    client_ip: str | None,
    event: str = "http_request",
    level: int = logging.INFO,
) -> None:
    """The access line of one HTTP request (or, with ``event="websocket"``, one connection)."""
    logging.getLogger(ACCESS_LOGGER).log(
        level,
        "%s %s %s",
        method,
        route,
        status,
        extra={
            "fields": {
                "event": event,
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(duration_s * 1000, 2),
                "user": hash_user_id(user_id) if user_id else None,
                "client_ip": client_ip,
            }
        },
    )


def log_run(report: RunReport) -> None:
    """The line of one run that reached its terminal state."""
    logging.getLogger(RUN_LOGGER).info(
        "run %s %s",
        report.run_id,
        report.status,
        extra={
            "fields": {
                "event": "run_finished",
                "run_id": report.run_id,
                "status": report.status,
                "provider": report.provider,
                "model": report.model,
                "duration_ms": round(report.duration_s * 1000, 1),
                "ttft_ms": None if report.ttft_s is None else round(report.ttft_s * 1000, 1),
                "input_tokens": report.input_tokens,
                "output_tokens": report.output_tokens,
                "error_code": report.error_code,
            }
        },
    )
