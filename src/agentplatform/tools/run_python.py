"""The ``run_python`` tool: the model's code, run in a bubblewrap sandbox (see ``sandbox``).

Each conversation gets its own workspace, ``workspace_root/<conversation_id>``, mounted at
``/workspace``; its files persist between calls of that conversation and no other
conversation can see them. The tool reports itself unavailable — and refuses to run — when
the sandbox cannot be set up on this machine; it never runs code unsandboxed.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agentplatform.tools.base import ToolContext, ToolError, ToolResult
from agentplatform.tools.sandbox import MIB, Limits, Outcome, Sandbox, SandboxError

MAX_CODE_BYTES = 100_000
MAX_STDIN_BYTES = 1_000_000
# Our own wall-clock kill reports first; the registry's timeout is the backstop.
_TIMEOUT_MARGIN = 10.0
_PROCESS_NOTE = "process limit: {0.max_processes} processes and threads (the program included)"


class RunPython:
    """Run Python 3 code in a sandbox with a persistent per-conversation workspace."""

    name = "run_python"

    def __init__(
        self,
        workspace_root: Path,
        *,
        timeout: float = 30.0,
        cpu_seconds: int = 10,
        memory_bytes: int = 512 * MIB,
        max_processes: int = 16,
        max_output_bytes: int = 16_000,
        bwrap: str | None = shutil.which("bwrap"),
        python: str = "/usr/bin/python3",
    ) -> None:
        self.workspace_root = Path(workspace_root)
        self.limits = Limits(
            wall_seconds=timeout,
            cpu_seconds=cpu_seconds,
            memory_bytes=memory_bytes,
            max_processes=max_processes,
            max_output_bytes=max_output_bytes,
        )
        self._sandbox = Sandbox(bwrap=bwrap, limits=self.limits, python=python)

    @property
    def description(self) -> str:
        limits = self.limits
        return (
            "Run Python 3 code (standard library only; packages cannot be installed) in an "
            "isolated sandbox with no network access. The working directory /workspace "
            "persists between calls in this conversation, so files written there can be read "
            "later; /tmp is wiped after each call. Print what you need to see: stdout and "
            f"stderr are returned (at most {limits.max_output_bytes} bytes). Limits: "
            f"{limits.wall_seconds:g} s wall clock, {limits.cpu_seconds} s CPU and "
            f"{limits.memory_bytes // MIB} MiB of memory per process, "
            f"{limits.max_processes} processes or threads."
        )

    @property
    def parameters(self) -> Mapping[str, Any]:
        return {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "The Python program to run, as a complete script.",
                    "maxLength": MAX_CODE_BYTES,
                },
                "stdin": {
                    "type": "string",
                    "description": "Text given to the program on standard input.",
                    "maxLength": MAX_STDIN_BYTES,
                },
            },
            "required": ["code"],
            "additionalProperties": False,
        }

    @property
    def timeout(self) -> float:
        return self.limits.wall_seconds + _TIMEOUT_MARGIN

    def unavailable_reason(self) -> str | None:
        """None when the sandbox works here; the first call runs a self-test (~50 ms)."""
        return self._sandbox.check(self.workspace_root)

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        reason = self.unavailable_reason()
        if reason is not None:
            raise ToolError(f"run_python is unavailable: {reason}")
        code, stdin = arguments.get("code"), arguments.get("stdin")
        if not isinstance(code, str) or len(code.encode()) > MAX_CODE_BYTES:
            raise ToolError(f"'code' must be a string of at most {MAX_CODE_BYTES} bytes")
        if stdin is not None and (
            not isinstance(stdin, str) or len(stdin.encode()) > MAX_STDIN_BYTES
        ):
            raise ToolError(f"'stdin' must be a string of at most {MAX_STDIN_BYTES} bytes")
        try:
            workspace = self._sandbox.workspace(self.workspace_root, context.conversation_id)
            outcome = await self._sandbox.run(workspace, code, stdin)
        except SandboxError as exc:
            raise ToolError(str(exc)) from None
        return ToolResult(render(outcome), is_error=not outcome.ok)


def render(outcome: Outcome) -> str:
    """The model-facing report: exit status, both streams, and why it stopped early."""
    status = "killed" if outcome.exit_code is None else f"exit code {outcome.exit_code}"
    lines = [f"{status} ({outcome.elapsed:.2f} s)"]
    for name, data in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        if data:
            lines += [f"--- {name} ---", data.decode(errors="replace").rstrip("\n")]
    notes = limit_notes(outcome)
    if notes:
        lines += ["--- sandbox ---", *notes]
    if len(lines) == 1:
        lines.append("(no output)")
    return "\n".join(lines)


def limit_notes(outcome: Outcome) -> list[str]:
    """Plain-language reasons the program stopped early, if it did."""
    limits, notes = outcome.limits, []
    if outcome.timed_out:
        notes.append(f"timed out: killed after {limits.wall_seconds:g} s of wall-clock time")
    if outcome.output_truncated:
        notes.append(f"output truncated at {limits.max_output_bytes} bytes; the program was killed")
    code = outcome.exit_code
    if code is not None and code > 128:  # bwrap reports death by signal N as 128 + N
        notes.append(_signal_note(code - 128, limits))
    last_line = outcome.stderr.rstrip().rsplit(b"\n", 1)[-1]
    for marker, note in (
        (b"MemoryError", f"memory limit: {limits.memory_bytes // MIB} MiB per process reached"),
        (b"[Errno 27] File too large", f"file size limit: {limits.file_size_bytes // MIB} MiB"),
        (b"[Errno 24] Too many open files", f"open files limit: {limits.open_files}"),
        (b"[Errno 11] Resource temporarily unavailable", _PROCESS_NOTE.format(limits)),
        (b"can't start new thread", _PROCESS_NOTE.format(limits)),
    ):
        if marker in last_line:
            notes.append(note)
    return notes


def _signal_note(signum: int, limits: Limits) -> str:
    if signum == signal.SIGXCPU:
        return f"killed: CPU time limit ({limits.cpu_seconds} s) reached"
    if signum == signal.SIGXFSZ:
        return f"killed: file size limit ({limits.file_size_bytes // MIB} MiB) reached"
    name = signal.Signals(signum).name if signum in signal.valid_signals() else f"signal {signum}"
    if signum == signal.SIGKILL:
        return (
            f"killed by SIGKILL (the hard CPU time limit of {limits.cpu_seconds + 1} s, or the "
            "kernel's out-of-memory killer)"
        )
    if signum in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT):
        return f"crashed with {name} (possibly the memory limit)"
    return f"killed by {name}"
