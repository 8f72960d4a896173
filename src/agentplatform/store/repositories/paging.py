"""Keyset pagination helpers: a page of rows and an opaque cursor to the next one."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from agentplatform.errors import BadRequest

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(at: datetime, row_id: str) -> str:
    raw = json.dumps([at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (timestamp, id) a cursor points after; a bad cursor is a 400, never a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at_text, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = datetime.fromisoformat(at_text)
        if not isinstance(row_id, str) or at.tzinfo is None:
            raise ValueError("cursor shape")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("The cursor is not valid.", details={"cursor": cursor[:64]}) from exc
    return at, row_id
