"""The tools every process offers, registered through the same registry as MCP tools."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agentplatform.tools.base import Tool
from agentplatform.tools.calculator import CalculatorTool
from agentplatform.tools.clock import CurrentTimeTool
from agentplatform.tools.http_fetch import HttpFetchTool
from agentplatform.tools.run_python import RunPython


def builtin_tools(*, workspace_dir: Path, http_allow_hosts: Sequence[str] = ()) -> list[Tool]:
    return [
        CalculatorTool(),
        CurrentTimeTool(),
        HttpFetchTool(allow_hosts=http_allow_hosts),
        RunPython(workspace_dir),
    ]
