"""The sandbox's plumbing: workspace names, the self-test verdict, bwrap's options, limits.

The escape attempts themselves live in ``test_run_python.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentplatform.tools.base import ToolContext, ToolError, ToolRegistry
from agentplatform.tools.run_python import RunPython
from agentplatform.tools.sandbox import NOBODY, Limits, Sandbox, SandboxError, _tasks_of

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
LIMITS = Limits(wall_seconds=5, cpu_seconds=2, max_processes=8)


@pytest.fixture
def root() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="agentplatform-sandbox-"))
    base.chmod(0o711)  # the sandbox uid must be able to reach the workspaces
    yield base / "workspaces"
    shutil.rmtree(base)


def working_sandbox(root: Path) -> Sandbox:
    sandbox = Sandbox(bwrap=shutil.which("bwrap"), limits=LIMITS)
    reason = sandbox.check(root)
    if reason is not None:
        if IN_CI:
            pytest.fail(f"the sandbox must work under CI=true: {reason}", pytrace=False)
        pytest.skip(f"sandbox unavailable here: {reason}")
    return sandbox


@pytest.mark.parametrize(
    "name", ["..", ".", "../x", "a/b", "/etc", ".self-test", "", "x\0y", "é", "a b", "x" * 129]
)
def test_workspace_names_that_could_escape_are_refused(root: Path, name: str) -> None:
    with pytest.raises(SandboxError, match="refusing workspace name"):
        Sandbox(bwrap=None, limits=LIMITS).workspace(root, name)
    assert not root.exists()


def test_workspace_is_private_and_reused(root: Path) -> None:
    sandbox = Sandbox(bwrap=None, limits=LIMITS)
    first = sandbox.workspace(root, "0192f1a2-7c3e-7b4d-8e5f-0123456789ab")
    assert first.parent == root
    assert stat.S_IMODE(first.stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o711  # traversable, not listable
    if os.geteuid() == 0:
        assert (first.stat().st_uid, first.stat().st_gid) == (NOBODY, NOBODY)
    (first / "kept").write_text("x")
    assert sandbox.workspace(root, first.name) == first
    assert (first / "kept").exists()


def test_a_symlinked_workspace_is_refused(root: Path, tmp_path: Path) -> None:
    root.mkdir()
    (root / "sneaky").symlink_to(tmp_path)
    with pytest.raises(SandboxError, match="not a directory"):
        Sandbox(bwrap=None, limits=LIMITS).workspace(root, "sneaky")


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(cpu_seconds=0)
    with pytest.raises(ValueError, match="positive"):
        Limits(wall_seconds=-1)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"bwrap": None}, "bubblewrap is not installed"),
        ({"bwrap": "/nonexistent/bwrap"}, "bubblewrap is not installed"),
        (
            {"bwrap": "/usr/bin/false", "prlimit": "/usr/bin/prlimit"},
            "the sandbox self-test failed (exit code 1)",
        ),
        ({"prlimit": "/nonexistent/prlimit"}, "prlimit is not installed"),
        ({"python": "/opt/elsewhere/python3"}, "is not under /usr"),
        ({"python": "/usr/local/bin/python3"}, "is not under /usr"),
        ({"python": "/usr/bin/no-such-python"}, "is not installed"),
    ],
)
async def test_unavailable_with_a_reason_and_never_runs(
    root: Path, options: dict[str, str | None], reason: str
) -> None:
    # Any executable passes the static checks that come before the one under test.
    settings: dict[str, str | None] = {"bwrap": "/usr/bin/env", "prlimit": "/usr/bin/env"}
    settings.update(options)
    if "false" in str(settings["bwrap"]) and not os.access(str(settings["prlimit"]), os.X_OK):
        pytest.skip("prlimit is missing")
    bwrap = settings.pop("bwrap")
    sandbox = Sandbox(bwrap=bwrap, limits=LIMITS, **settings)  # type: ignore[arg-type]
    verdict = sandbox.check(root)
    assert verdict is not None
    assert reason in verdict
    with pytest.raises(SandboxError, match=re.escape(verdict)):
        await sandbox.run(root, "print('must not run')")


async def test_run_python_refuses_when_unavailable(root: Path) -> None:
    tool = RunPython(root, bwrap=None)
    assert tool.unavailable_reason() == (
        "bubblewrap is not installed (Debian package 'bubblewrap', command bwrap)"
    )
    context = ToolContext("user-1", "conversation-1", "run-1")
    with pytest.raises(ToolError, match="run_python is unavailable: bubblewrap"):
        await tool.call({"code": "print(1)"}, context)
    result = await ToolRegistry([tool]).call("run_python", {"code": "print(1)"}, context)
    assert result.is_error
    assert "unavailable" in result.content
    assert not (root / "conversation-1").exists()


async def test_run_before_check_is_refused(root: Path) -> None:
    sandbox = Sandbox(bwrap=shutil.which("bwrap"), limits=LIMITS)
    with pytest.raises(SandboxError, match=r"call check\(\) first"):
        await sandbox.run(root, "print(1)")


def test_the_self_test_runs_once_and_leaves_nothing_behind(root: Path) -> None:
    sandbox = working_sandbox(root)
    assert list(root.iterdir()) == []
    sandbox.bwrap = "/usr/bin/false"  # a cached verdict is not re-evaluated
    assert sandbox.check(root) is None


def test_bwrap_options_isolate_everything(root: Path) -> None:
    sandbox = Sandbox(bwrap="/usr/bin/bwrap", limits=LIMITS)
    workspace = sandbox.workspace(root, "conversation-1")
    args = sandbox.bwrap_args(workspace, code_fd=7, info_fd=8)
    for flag in ("--unshare-all", "--disable-userns", "--die-with-parent", "--new-session"):
        assert flag in args
    assert "--share-net" not in args
    assert args[args.index("--cap-drop") + 1] == "ALL"
    assert args[args.index("--bind") + 1 : args.index("--bind") + 3] == [
        str(workspace),
        "/workspace",
    ]
    assert args.count("--bind") == 1  # the only writable host directory
    read_only = {args[i + 1] for i, arg in enumerate(args) if arg.startswith("--ro-bind")}
    system = {"/usr", "/etc/alternatives", "/etc/ld.so.cache", "/bin", "/sbin", "/lib", "/lib64"}
    assert read_only <= {*system, "/lib32", "/libx32", "7"}  # 7: the code, from its memfd
    assert args[-4:] == ["--remount-ro", "/dev", "--remount-ro", "/"]


def test_process_limit_counts_what_the_uid_already_runs() -> None:
    sandbox = Sandbox(bwrap="/usr/bin/bwrap", limits=LIMITS)
    uid = NOBODY if os.geteuid() == 0 else os.getuid()
    args = dict(arg[2:].split("=", 1) for arg in sandbox.prlimit_args())
    assert args["cpu"] == "2:3"
    assert args["as"] == str(LIMITS.memory_bytes)
    assert args["core"] == "0"
    # 2 for bwrap's own processes; the count may move while we look.
    assert abs(int(args["nproc"]) - (_tasks_of(uid) + 2 + LIMITS.max_processes)) <= 4
