"""run_python against real bubblewrap: workspaces, and every escape we could think of.

Each escape test runs real code in a real sandbox and asserts both that it was contained and
that the report says so. Without bwrap they skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentplatform
from agentplatform.tools.base import ToolContext, ToolError, ToolRegistry, ToolResult
from agentplatform.tools.run_python import RunPython
from agentplatform.tools.sandbox import NOBODY, _tasks_of

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
MIB = 1024 * 1024


def require(tool: RunPython) -> RunPython:
    """Skip without a working sandbox — except under CI, where that is a failure."""
    reason = tool.unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"run_python must work under CI=true: {reason}", pytrace=False)
        pytest.skip(f"run_python unavailable here: {reason}")
    return tool


@pytest.fixture(scope="module")
def workspace_root() -> Iterator[Path]:
    # Not tmp_path: pytest's base directory is 0700, and the sandbox uid must reach the root.
    base = Path(tempfile.mkdtemp(prefix="agentplatform-run-python-"))
    base.chmod(0o711)
    yield base / "workspaces"
    shutil.rmtree(base)


def make_tool(root: Path, **overrides: float) -> RunPython:
    limits: dict[str, float] = {
        "timeout": 5.0,
        "cpu_seconds": 2,
        "memory_bytes": 256 * MIB,
        "max_processes": 16,
        "max_output_bytes": 4000,
    }
    limits.update(overrides)
    return require(RunPython(root, **limits))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tool(workspace_root: Path) -> RunPython:
    return make_tool(workspace_root)


def context(conversation_id: str | None = None) -> ToolContext:
    return ToolContext("user-1", conversation_id or str(uuid.uuid4()), "run-1")


async def run(tool: RunPython, code: str, ctx: ToolContext | None = None) -> ToolResult:
    return await tool.call({"code": code}, ctx or context())


def processes_in(pid_namespace: str) -> list[int]:
    """Host PIDs of live (not zombie) processes in a PID namespace, as ``readlink`` names it."""
    found = []
    for entry in os.scandir("/proc"):
        with contextlib.suppress(OSError):  # gone meanwhile
            if entry.name.isdigit() and os.readlink(f"{entry.path}/ns/pid") == pid_namespace:
                state = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
    return found


async def test_hello_world(tool: RunPython) -> None:
    result = await run(tool, "print('hello, world')")
    assert not result.is_error
    assert result.content.splitlines()[0].startswith("exit code 0")
    assert "--- stdout ---\nhello, world" in result.content


async def test_through_the_registry_with_stdin_and_exit_code(tool: RunPython) -> None:
    registry = ToolRegistry([tool])
    code = "import sys\nprint(sys.stdin.read().upper())\nsys.exit(3)"
    result = await registry.call("run_python", {"code": code, "stdin": "abc"}, context())
    assert result.is_error
    assert result.content.startswith("exit code 3")
    assert "ABC" in result.content


async def test_files_persist_within_a_conversation_and_no_further(
    tool: RunPython, workspace_root: Path
) -> None:
    mine, theirs = context(), context()
    await run(tool, "open('notes.txt', 'w').write('remember me')", mine)
    again = await run(tool, "print(open('/workspace/notes.txt').read())", mine)
    assert "remember me" in again.content

    other = await run(
        tool, f"import os\nprint(os.listdir('.'))\nopen('../{mine.conversation_id}')", theirs
    )
    assert "[]" in other.content
    assert "FileNotFoundError" in other.content
    assert "remember me" not in other.content

    folder = workspace_root / mine.conversation_id
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    if os.geteuid() == 0:
        assert folder.stat().st_uid == NOBODY


async def test_ordinary_programs_work(tool: RunPython) -> None:
    ctx = context()
    await run(tool, "open('helper.py', 'w').write('def triple(n):\\n    return 3 * n\\n')", ctx)
    code = """
import subprocess, threading, helper
seen = []
threads = [threading.Thread(target=seen.append, args=(n,)) for n in range(3)]
[t.start() for t in threads]
[t.join() for t in threads]
[print(n) for n in sorted(seen)]
print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
print(helper.triple(14))
"""
    result = await run(tool, code, ctx)
    assert not result.is_error, result.content
    assert result.content.split("--- stdout ---\n")[1].split() == ["0", "1", "2", "child", "42"]


async def test_killing_everything_kills_only_the_sandbox(tool: RunPython) -> None:
    result = await run(
        tool, "import os, signal\nprint('bye', flush=True)\nos.kill(-1, signal.SIGKILL)"
    )
    assert "bye" in result.content  # and this process, the "server", is still here to see it
    processes = await run(
        tool, "import os\nprint(sorted(p for p in os.listdir('/proc') if p.isdigit()))"
    )
    assert "['1', '2']" in processes.content  # bwrap's PID 1 and the program: nothing else


async def test_tmp_is_private_to_one_call(tool: RunPython) -> None:
    ctx = context()
    await run(tool, "open('/tmp/scratch', 'w').write('x')", ctx)
    result = await run(tool, "import os\nprint(os.path.exists('/tmp/scratch'))", ctx)
    assert "False" in result.content


async def test_no_network(tool: RunPython) -> None:
    accepted: list[object] = []
    server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract_name = f"\0agentplatform-test-{uuid.uuid4()}"
    abstract.bind(abstract_name)
    abstract.listen()
    code = f"""
import socket
def attempt(label, action):
    try:
        action()
        print(label, "CONNECTED")
    except OSError as exc:
        print(label, "refused:", type(exc).__name__, exc)
attempt("tcp-loopback", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
attempt("tcp-outside", lambda: socket.create_connection(("192.0.2.1", 80), timeout=2))
attempt("dns", lambda: socket.getaddrinfo("example.com", 443))
attempt("abstract-unix", lambda: socket.socket(socket.AF_UNIX).connect({abstract_name!r}))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.sendto(b"leak", ("127.0.0.1", {udp.getsockname()[1]}))
print("interfaces", [name for _, name in socket.if_nameindex()])
"""
    try:
        result = await run(tool, code)
    finally:
        server.close()
        await server.wait_closed()
    with pytest.raises(BlockingIOError):
        udp.recv(16)  # loopback delivery is synchronous: had it crossed, it would be here
    with pytest.raises(BlockingIOError):
        abstract.setblocking(False)
        abstract.accept()
    udp.close()
    abstract.close()
    assert "CONNECTED" not in result.content
    for label in ("tcp-loopback", "tcp-outside", "dns", "abstract-unix"):
        assert f"{label} refused:" in result.content
    assert "interfaces ['lo']" in result.content
    assert accepted == []


async def test_nothing_of_the_host_is_readable(
    tool: RunPython, workspace_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = f"canary-{uuid.uuid4()}"
    monkeypatch.setenv("AGENTPLATFORM_TEST_SECRET", canary)
    source_tree = Path(agentplatform.__file__).parent
    targets = [
        "/work", "/root", "/home", "/run", "/etc/shadow", "/etc/passwd", "/etc/hostname", "/var",
        "/sys", "/usr/local/lib", str(source_tree), str(source_tree / "tools" / "base.py"),
        str(workspace_root), "/proc/1/root/etc/shadow",
    ]  # fmt: skip
    code = f"""
import json, os
seen = {{}}
for path in {targets!r}:
    try:
        seen[path] = os.listdir(path) if os.path.isdir(path) else open(path).read(200)
    except OSError as exc:
        seen[path] = type(exc).__name__
seen["environ"] = dict(os.environ)
for name in ("environ", "cmdline"):
    seen["/proc/1/" + name] = open("/proc/1/" + name, "rb").read().decode(errors="replace")
seen["pids"] = [p for p in os.listdir("/proc") if p.isdigit()]
print(json.dumps(seen))
"""
    result = await run(tool, code)
    seen = json.loads(result.content.split("--- stdout ---\n", 1)[1].split("\n--- ", 1)[0])
    assert canary not in result.content
    for path in targets:
        assert seen[path] in ("FileNotFoundError", "PermissionError", []), path
    assert "AGENTPLATFORM_TEST_SECRET" not in seen["environ"]
    assert seen["/proc/1/environ"] == ""
    assert str(workspace_root) not in seen["/proc/1/cmdline"]
    assert len(seen["pids"]) <= 3  # bwrap's PID 1, python, and nothing of the host


async def test_nothing_outside_the_workspace_is_writable(tool: RunPython) -> None:
    targets = [
        "/x", "/usr/x", "/usr/local/x", "/etc/x", "/dev/x", "/proc/x", "/sandbox/main.py",
        "/proc/sys/kernel/hostname", "/proc/1/root/x",
    ]  # fmt: skip
    code = f"""
for path in {targets!r}:
    try:
        open(path, "w").write("x")
        print(path, "WRITTEN")
    except OSError as exc:
        print(path, "refused:", type(exc).__name__)
"""
    result = await run(tool, code)
    assert "WRITTEN" not in result.content
    for path in targets:
        assert f"{path} refused:" in result.content


async def test_fork_bomb_is_contained(workspace_root: Path) -> None:
    tool = make_tool(workspace_root, timeout=3.0)
    code = """
import os, time
made = refused = 0
for _ in range(100):
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        made += 1
    except OSError:
        refused += 1
print("made", made, "refused", refused, os.readlink("/proc/self/ns/pid"), flush=True)
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    result = await run(tool, code)
    made, _, refused, namespace = result.content.split("made ", 1)[1].split()[:4]
    made_only = 16 if _tasks_of(NOBODY) == 0 else 100  # other sandboxes may hold slots now
    assert 0 < int(made) < made_only
    assert int(refused) > 0
    assert result.is_error
    assert "timed out" in result.content or "CPU time limit" in result.content
    assert processes_in(namespace) == []  # nothing of the bomb outlives the call
    true = await asyncio.create_subprocess_exec("true")
    assert await true.wait() == 0  # and the host still forks


async def test_memory_hog_is_stopped(tool: RunPython) -> None:
    result = await run(tool, "hog = bytearray(2 * 1024 ** 3)\nprint('allocated')")
    assert result.is_error
    assert "allocated" not in result.content
    assert "memory limit: 256 MiB per process reached" in result.content


@pytest.mark.parametrize(
    ("code", "note"),
    [
        ("open('big', 'wb').write(bytes(65 * 2**20))", "file size limit: 64 MiB"),
        ("files = [open('f', 'w') for _ in range(300)]", "open files limit: 256"),
        ("import os, signal\nwhile True:\n    os.fork() or signal.pause()", "process limit: 16"),
        (
            "import threading, time\nwhile True:\n"
            "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()",
            "process limit: 16",
        ),
    ],
)
async def test_other_limits_are_reported(tool: RunPython, code: str, note: str) -> None:
    result = await run(tool, code)
    assert result.is_error
    assert f"--- sandbox ---\n{note}" in result.content


async def test_infinite_loop_hits_the_cpu_limit(workspace_root: Path) -> None:
    tool = make_tool(workspace_root, timeout=30.0, cpu_seconds=1)  # roomy: CI machines are busy
    result = await run(tool, "while True:\n    pass")
    assert result.is_error
    assert "killed: CPU time limit (1 s) reached" in result.content


async def test_sleeping_forever_hits_the_wall_clock(workspace_root: Path) -> None:
    tool = make_tool(workspace_root, timeout=1.0)
    result = await run(tool, "import time\nprint('start', flush=True)\ntime.sleep(600)")
    assert result.content.startswith("killed (1.")
    assert "start" in result.content
    assert "timed out: killed after 1 s of wall-clock time" in result.content


async def test_output_flood_is_truncated(tool: RunPython) -> None:
    result = await run(tool, "import sys\nwhile True:\n    sys.stderr.write('#' * 1000)")
    assert result.is_error
    assert "output truncated at 4000 bytes; the program was killed" in result.content
    assert result.content.count("#") == 4000


async def test_cancelled_call_leaves_nothing_running(tool: RunPython, workspace_root: Path) -> None:
    ctx = context()
    code = """
import os, time
os.fork()
open("namespace", "w").write(os.readlink("/proc/self/ns/pid"))
time.sleep(600)
"""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1.5):
            await run(tool, code, ctx)
    namespace = (workspace_root / ctx.conversation_id / "namespace").read_text()
    assert namespace.startswith("pid:[")
    assert processes_in(namespace) == []


async def test_calls_run_concurrently(tool: RunPython) -> None:
    results = await asyncio.gather(*(run(tool, f"print({n} * 7)") for n in range(4)))
    assert [r.content.split("--- stdout ---\n")[1] for r in results] == ["0", "7", "14", "21"]


@pytest.mark.parametrize(
    "conversation_id", ["..", "../escape", "a/../../b", "/etc", ".hidden", "x\0y", "", "é"]
)
async def test_conversation_ids_cannot_traverse(
    tool: RunPython, workspace_root: Path, conversation_id: str
) -> None:
    before = sorted(workspace_root.parent.rglob("*"))
    with pytest.raises(ToolError, match="refusing workspace name"):
        await run(tool, "print(1)", ToolContext("user-1", conversation_id, "run-1"))
    assert sorted(workspace_root.parent.rglob("*")) == before


async def test_oversized_code_is_refused(tool: RunPython) -> None:
    with pytest.raises(ToolError, match="at most 100000 bytes"):
        await run(tool, "#" + "é" * 60_000)


def test_task_count_sees_this_process() -> None:
    assert _tasks_of(os.getuid()) >= 1
