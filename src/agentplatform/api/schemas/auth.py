"""Identity payloads."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class UserPublic(BaseModel):
    id: str
    kind: str
    display_name: str
    created_at: datetime


class SessionPublic(BaseModel):
    user: UserPublic
    expires_at: datetime


class GuestSessionPublic(SessionPublic):
    token: str
