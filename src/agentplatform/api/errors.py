"""Maps every failure to the error envelope ``{"error": {"code", "message", "details"?}}``.

Nothing here ever returns a stack trace or an exception's text to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from agentplatform.errors import AppError, ServiceUnavailable

log = logging.getLogger("agentplatform.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
DB_RETRY_AFTER = 5


def envelope(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return envelope(exc.status, exc.code, exc.message, exc.details, headers)


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        return envelope(400, "bad_request", "The request body is not valid JSON.")
    details = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]
    return envelope(422, "invalid_input", "The request did not validate.", details)


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else "Request failed."
    return envelope(exc.status_code, code, message, headers=dict(exc.headers or {}))


def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    err = ServiceUnavailable("The database is unavailable; try again shortly.")
    return envelope(err.status, err.code, err.message, headers={"Retry-After": str(DB_RETRY_AFTER)})


def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return _database_unavailable(request, exc)
    if isinstance(exc, DataError):  # a value the database cannot hold (e.g. NUL in text)
        return envelope(400, "bad_request", "The request contains a value that cannot be stored.")
    return _unexpected(request, exc)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The route template, not the raw path: a path may carry a token (/api/auth/validate/…).
    route = getattr(request.scope.get("route"), "path", "unmatched")
    log.error("unhandled error on %s %s", request.method, route, exc_info=exc)
    return envelope(500, "internal", "Something went wrong on our side.")


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(ConnectionError, _database_unavailable)
    app.add_exception_handler(TimeoutError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
