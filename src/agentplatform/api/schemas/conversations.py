"""Conversation and message payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from agentplatform.api.schemas.common import (
    NoControl,
    NoNul,
    PatchModel,
    StrictModel,
    Title,
    trimmed,
)

OptionalTitle = Annotated[str, trimmed(0, 200), NoControl]


class ConversationCreate(StrictModel):
    agent_id: Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]
    title: OptionalTitle = ""


class ConversationUpdate(PatchModel):
    title: Title


class ConversationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    title: str
    message_count: int
    created_at: datetime
    updated_at: datetime


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    conversation_id: str
    seq: int
    role: str
    content: str
    parts: list[dict[str, Any]] | None = None
    status: str
    run_id: str | None = None  # the run that wrote an assistant message (resume it while streaming)
    created_at: datetime
