"""The one error tree. Every failure a client can see is one of these.

    AppError                      500  internal (never carries details of the fault)
    ├── BadRequest                400  bad_request
    ├── Unauthorized              401  unauthorized
    ├── NotFound                  404  not_found   (also: another user's object)
    ├── Conflict                  409  conflict
    ├── PayloadTooLarge           413  payload_too_large
    ├── InvalidInput              422  invalid_input
    ├── RateLimited               429  rate_limited (carries retry_after)
    │   └── QuotaExceeded         429  quota_exceeded (a guest quota is used up)
    └── ServiceUnavailable        503  unavailable  (carries retry_after)

`api/errors.py` maps them to the JSON envelope ``{"error": {"code", "message", "details"?}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """Base of every error the platform raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    default_message: ClassVar[str] = "Something went wrong on our side."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        retry_after: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.retry_after = retry_after
        super().__init__(self.message)


class BadRequest(AppError):
    status = 400
    code = "bad_request"
    default_message = "The request could not be understood."


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    default_message = "A valid session is required."


class NotFound(AppError):
    status = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(AppError):
    status = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    default_message = "The request body is too large."


class InvalidInput(AppError):
    status = 422
    code = "invalid_input"
    default_message = "The request did not validate."


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests; slow down."


class QuotaExceeded(RateLimited):
    code = "quota_exceeded"
    default_message = "A usage quota is used up."


class ServiceUnavailable(AppError):
    status = 503
    code = "unavailable"
    default_message = "The service is temporarily unavailable; try again shortly."
