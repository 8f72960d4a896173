"""Model listing payloads."""

from __future__ import annotations

from pydantic import BaseModel


class ModelPublic(BaseModel):
    id: str
    provider: str
    name: str
    label: str
    offline_demo: bool
    context_tokens: int


class ModelList(BaseModel):
    items: list[ModelPublic]
    default: str | None
    next_cursor: None = None
