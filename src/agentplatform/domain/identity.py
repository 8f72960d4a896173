"""Who is asking: the principal resolved from a validated session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user behind a request; the only source of identity."""

    user_id: str
    session_id: str
    kind: str
    display_name: str
    user_created_at: datetime
    expires_at: datetime
