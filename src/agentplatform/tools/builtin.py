"""The tools every agent platform process offers, built from settings."""

from __future__ import annotations

from agentplatform.tools.base import Tool


def builtin_tools() -> list[Tool]:
    """Built-in tools, registered through the same registry as MCP tools."""
    return []
