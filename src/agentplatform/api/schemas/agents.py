"""Agent payloads and the validation rules that go with them."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from agentplatform.api.schemas.common import NoControl, NoNul, PatchModel, StrictModel, trimmed

MAX_TAGS = 16
MODEL_PATTERN = r"^[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,95}$"
ICON_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_EMOJI_JOINERS = {"\u200d", "\ufe0f", "\ufe0e", "\u20e3"}


def _tags(values: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for raw in values:
        tag = raw.strip().lower()
        if not 1 <= len(tag) <= 32:
            raise ValueError("each tag must be 1-32 characters after trimming")
        if any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in tag):
            raise ValueError("tags must not contain control or separator characters")
        seen.setdefault(tag, None)
    if len(seen) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return list(seen)


def _icon(value: str) -> str:
    """An icon name (``robot``, ``book-open``) or a short emoji (up to 8 code points)."""
    if ICON_NAME.match(value):
        return value
    if 1 <= len(value) <= 8 and all(_is_emoji_part(ch) for ch in value):
        return value
    raise ValueError("icon must be an icon name (a-z, 0-9, -) or a short emoji")


def _is_emoji_part(ch: str) -> bool:
    if ch in _EMOJI_JOINERS:
        return True
    category = unicodedata.category(ch)
    return (ord(ch) > 0x2000 and category in {"So", "Sk", "Mn", "Me"}) or (
        0x1F1E6 <= ord(ch) <= 0x1F1FF or 0x1F3FB <= ord(ch) <= 0x1F3FF
    )


Name = Annotated[str, trimmed(1, 80), NoControl]
Description = Annotated[str, StringConstraints(max_length=2_000), NoNul]
Tags = Annotated[list[Annotated[str, StringConstraints(max_length=64)]], AfterValidator(_tags)]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]
Icon = Annotated[str, StringConstraints(max_length=32), AfterValidator(_icon)]
Instructions = Annotated[str, StringConstraints(max_length=20_000), NoNul]
ModelRef = Annotated[str, StringConstraints(pattern=MODEL_PATTERN)]
Temperature = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)]
MaxTokens = Annotated[int, Field(ge=1, le=64_000)]
Status = Literal["active", "archived"]
ToolName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}(\.[A-Za-z0-9_-]{1,64})?$")
]
ToolNames = Annotated[
    list[ToolName], Field(max_length=32), AfterValidator(lambda v: list(dict.fromkeys(v)))
]
MaxSteps = Annotated[int, Field(ge=1, le=32)]


class AgentCreate(StrictModel):
    name: Name
    description: Description = ""
    tags: Tags = Field(default_factory=list, max_length=256)
    color: Color = "#6366F1"
    icon: Icon = "robot"
    instructions: Instructions = ""
    model: ModelRef | None = None
    temperature: Temperature = 0.7
    max_tokens: MaxTokens = 1024
    status: Status = "active"
    tools: ToolNames = Field(default_factory=list)
    max_steps: MaxSteps = 8


class AgentUpdate(PatchModel):
    name: Name | None = None
    description: Description | None = None
    tags: Tags | None = Field(default=None, max_length=256)
    color: Color | None = None
    icon: Icon | None = None
    instructions: Instructions | None = None
    model: ModelRef | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    status: Status | None = None
    tools: ToolNames | None = None
    max_steps: MaxSteps | None = None


class AgentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    tags: list[str]
    color: str
    icon: str
    instructions: str
    model: str
    temperature: float
    max_tokens: int
    status: Status
    tools: list[str]
    max_steps: int
    total_runs: int
    successful_runs: int
    created_at: datetime
    updated_at: datetime
