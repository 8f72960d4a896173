"""What a run has produced so far: its text, its tool steps as message parts, its counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentplatform.store.tables import Run


@dataclass
class Progress:
    run: Run
    seq: int = 0
    parts: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def text(self) -> str:
        return "".join(p["text"] for p in self.parts if p["type"] == "text")

    @property
    def used_tools(self) -> bool:
        return any(p["type"] != "text" for p in self.parts)

    def add_text(self, text: str) -> None:
        if self.parts and self.parts[-1]["type"] == "text":
            self.parts[-1]["text"] += text
        else:
            self.parts.append({"type": "text", "text": text})

    def add_usage(self, input_tokens: int, output_tokens: int) -> None:
        self.input_tokens = (self.input_tokens or 0) + input_tokens
        self.output_tokens = (self.output_tokens or 0) + output_tokens
