"""Shared field types and the list envelope."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator

T = TypeVar("T")


def _no_control(value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoControl = AfterValidator(_no_control)
NoNul = AfterValidator(_no_nul)


def trimmed(min_length: int, max_length: int) -> StringConstraints:
    """Trimmed first, then ``min_length``..``max_length`` long."""
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


# One line of visible text; free text that may span lines is ``Annotated[str, …, NoNul]``.
Title = Annotated[str, trimmed(1, 200), NoControl]


class StrictModel(BaseModel):
    """Input model: unknown fields are an error, and nothing is silently coerced from null."""

    model_config = ConfigDict(extra="forbid", str_max_length=100_000)


class PatchModel(StrictModel):
    """Input model for PATCH: omitted fields stay as they are; an explicit null is refused."""

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [key for key, value in data.items() if value is None]
            if nulls:
                raise ValueError(f"fields may not be null: {', '.join(map(str, nulls))}")
        return data


class ListPublic(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "details"?}}``."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {
        400: "Malformed request (bad JSON, bad cursor, unusable value).",
        401: "No valid session.",
        403: "Cross-site request refused.",
        404: "Not found, or not yours.",
        409: "Conflicts with the current state.",
        413: "Body too large.",
        422: "Did not validate; `details` lists the fields.",
        429: "Rate limit or quota reached; see Retry-After.",
        503: "A dependency is unavailable; see Retry-After.",
    }.items()
}
