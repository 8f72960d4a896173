"""Run untrusted Python under bubblewrap: no network, one private workspace, hard limits.

A ``Sandbox`` runs a program as a child process, never in the server process::

    prlimit <limits> -- bwrap --args <fd> /usr/bin/python3 /sandbox/main.py

``bwrap`` always runs *unprivileged*. When the server is root, the child first drops to uid
``nobody``: the kernel never enforces ``RLIMIT_NPROC`` for real root (user namespace or not),
and an escape then lands as nobody.
Inside, the program sees ``/usr`` read-only (``/usr/local`` hidden), a size-capped ``/tmp``,
a minimal ``/dev`` and ``/proc`` of its own PID namespace, and its workspace read-write at
``/workspace``. It has no network (only its own loopback), no capabilities, cannot create
user namespaces, and gets a cleared environment. bwrap itself is started with an empty
environment and reads its options from a memfd, so ``/proc/1`` inside shows no host secrets
or paths.

Limits: ``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_NPROC`` (processes and threads of the
sandbox uid, counted above those it already runs), ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``,
``RLIMIT_CORE=0``; a wall-clock timeout and an output cap kill the outer bwrap, and
``--die-with-parent`` then tears down the whole PID namespace.

``check()`` runs a self-test once and caches the verdict; ``run()`` refuses to run while the
verdict is a failure. There is no unsandboxed fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import time
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("agentplatform.tools.sandbox")

MIB = 1024 * 1024
CODE_PATH = "/sandbox/main.py"
WORKSPACE = "/workspace"
NOBODY = 65534
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_SELF_TEST_CODE = (
    "import os, socket\n"
    "assert [name for _, name in socket.if_nameindex()] == ['lo'], 'network is shared'\n"
    "assert os.getcwd() == '/workspace' and os.getuid() == 65534\n"
    "print('sandbox-ok')\n"
)
# bwrap's own processes (the outer monitor and PID 1 of the namespace) count towards NPROC.
_BWRAP_TASKS = 2
_TEARDOWN_SECONDS = 10.0


class SandboxError(Exception):
    """The sandbox cannot run this request (bad workspace id, sandbox unavailable)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-run limits. CPU, memory and file size apply to each process separately."""

    wall_seconds: float = 30.0
    cpu_seconds: int = 10
    memory_bytes: int = 512 * MIB
    max_processes: int = 16
    max_output_bytes: int = 16_000
    file_size_bytes: int = 64 * MIB
    open_files: int = 256
    tmp_bytes: int = 64 * MIB

    def __post_init__(self) -> None:
        if min(astuple(self)) <= 0:
            raise ValueError("every sandbox limit must be positive")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a run produced. ``exit_code`` is None when the sandbox was killed from outside."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    limits: Limits
    timed_out: bool = False
    output_truncated: bool = False
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.output_truncated


class Sandbox:
    """A bubblewrap sandbox for ``python3``; build one per configuration, reuse it freely."""

    def __init__(
        self,
        *,
        bwrap: str | None,
        limits: Limits,
        python: str = "/usr/bin/python3",
        prlimit: str | None = None,
    ) -> None:
        self.bwrap = bwrap
        self.limits = limits
        self.python = python
        self.prlimit = prlimit or shutil.which("prlimit")
        # Only root can (and must) switch to the sandbox uid; anyone else runs as themselves.
        self._as_nobody = os.geteuid() == 0
        self._verdict: tuple[str | None] | None = None

    def workspace(self, root: Path, name: str) -> Path:
        """The private directory ``root/name``, created 0700 for the sandbox uid if missing."""
        if not _ID.fullmatch(name):
            raise SandboxError(f"refusing workspace name {name[:80]!r}: use [A-Za-z0-9_-]")
        return self._make_workspace(root, name)

    def _make_workspace(self, root: Path, name: str) -> Path:
        root.mkdir(mode=0o711, parents=True, exist_ok=True)
        path = root / name
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass
        else:
            if self._as_nobody:
                os.chown(path, NOBODY, NOBODY)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode):
            raise SandboxError(f"workspace {name!r} is not a directory")
        return path

    def check(self, root: Path) -> str | None:
        """Why the sandbox cannot run here (None when it can). Self-tests once, then cached."""
        if self._verdict is None:
            self._verdict = (self._self_test(root),)
        return self._verdict[0]

    def _self_test(self, root: Path) -> str | None:
        reason = self._static_problem()
        if reason is not None:
            return reason
        try:
            workspace = self._make_workspace(root, f".self-test-{os.getpid()}-{id(self):x}")
        except (OSError, SandboxError) as exc:
            return f"cannot create the workspace directory under {root}: {exc}"
        try:
            with _Spawn(self, workspace, _SELF_TEST_CODE) as spawn:
                done = subprocess.run(
                    spawn.argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=30,
                    check=False, **spawn.kwargs,
                )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            return f"the sandbox self-test could not run bwrap: {exc}"
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        if done.returncode == 0 and done.stdout.strip() == b"sandbox-ok":
            return None
        detail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        hint = detail[-1] if detail else f"exit code {done.returncode}"
        return (
            f"the sandbox self-test failed ({hint[:300]}); bwrap needs unprivileged user "
            f"namespaces, and the sandbox uid must be able to reach {root}"
        )

    def _static_problem(self) -> str | None:
        if not self.bwrap or not os.access(self.bwrap, os.X_OK):
            return "bubblewrap is not installed (Debian package 'bubblewrap', command bwrap)"
        if not self.prlimit or not os.access(self.prlimit, os.X_OK):
            return "prlimit is not installed (Debian package 'util-linux')"
        real = os.path.realpath(self.python)
        if not real.startswith("/usr/") or real.startswith("/usr/local/"):
            return f"the interpreter {self.python} is not under /usr, which the sandbox mounts"
        if not os.access(real, os.X_OK):
            return f"the interpreter {self.python} is not installed (Debian package 'python3')"
        return None

    async def run(self, workspace: Path, code: str, stdin: str | None = None) -> Outcome:
        """Run ``code`` with ``workspace`` as ``/workspace``; returns once all of it is gone."""
        if self._verdict is None or self._verdict[0] is not None:
            raise SandboxError(self._verdict[0] if self._verdict else "call check() first")
        started, budget = time.monotonic(), self.limits.max_output_bytes
        out, err, timed_out = bytearray(), bytearray(), False
        with _Spawn(self, workspace, code) as spawn:
            proc = await asyncio.create_subprocess_exec(
                *spawn.argv,
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                **spawn.kwargs,
            )
            spawn.close_child_ends()
            try:
                async with asyncio.timeout(self.limits.wall_seconds):
                    await _supervise(proc, (out, err), budget, stdin)
            except TimeoutError:
                timed_out = True
            finally:  # also on cancellation: nothing of the run may outlive the call
                _kill(proc)
                await _teardown(proc, spawn.info)
        truncated = len(out) + len(err) > budget
        return Outcome(
            exit_code=None if timed_out or truncated else proc.returncode,
            stdout=bytes(out[:budget]),
            stderr=bytes(err[: budget - min(len(out), budget)]),
            limits=self.limits,
            timed_out=timed_out,
            output_truncated=truncated,
            elapsed=time.monotonic() - started,
        )

    def bwrap_args(self, workspace: Path, code_fd: int, info_fd: int) -> list[str]:
        """bwrap's options (passed through a memfd, so they stay out of ``/proc/1/cmdline``)."""
        args = [
            "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--uid", str(NOBODY), "--gid", str(NOBODY),
            "--hostname", "sandbox", "--info-fd", str(info_fd), "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", WORKSPACE,
            "--setenv", "TMPDIR", "/tmp", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "PYTHONPATH", WORKSPACE, "--setenv", "PYTHONUNBUFFERED", "1",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            "--ro-bind", "/usr", "/usr",
        ]  # fmt: skip
        args += _top_level_links()
        masked = os.path.isdir("/usr/local")
        if masked:  # pip-installed packages, the server's own code in most images
            args += ["--size", str(MIB), "--tmpfs", "/usr/local"]
        for path in ("/etc/alternatives", "/etc/ld.so.cache"):
            args += ["--ro-bind-try", path, path]
        args += [
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(self.limits.tmp_bytes // 4), "--tmpfs", "/dev/shm",
            "--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp",
            "--bind", str(workspace), WORKSPACE,
            "--ro-bind-data", str(code_fd), CODE_PATH,
            "--chdir", WORKSPACE,
        ]  # fmt: skip
        if masked:
            args += ["--remount-ro", "/usr/local"]
        # Last: bwrap's own root and /dev are tmpfs of unbounded size, writable until now.
        return [*args, "--remount-ro", "/dev", "--remount-ro", "/"]

    def prlimit_args(self) -> list[str]:
        """``prlimit`` options; NPROC counts every task the sandbox uid already runs."""
        limits = self.limits
        uid = NOBODY if self._as_nobody else os.getuid()
        nproc = _tasks_of(uid) + _BWRAP_TASKS + limits.max_processes
        return [
            f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}", f"--as={limits.memory_bytes}",
            f"--nproc={nproc}", f"--fsize={limits.file_size_bytes}",
            f"--nofile={limits.open_files}", "--core=0",
        ]  # fmt: skip


class _Spawn:
    """The argv and spawn options for one run, and the file descriptors that go with it."""

    def __init__(self, sandbox: Sandbox, workspace: Path, code: str) -> None:
        assert sandbox.bwrap is not None and sandbox.prlimit is not None
        self.info, info_w = os.pipe()  # bwrap reports the host PID of its PID 1 here
        os.set_blocking(self.info, False)
        self._child_ends = [info_w, _memfd("code", code.encode())]
        options = sandbox.bwrap_args(workspace, self._child_ends[1], info_w)
        self._child_ends.append(_memfd("args", b"".join(o.encode() + b"\0" for o in options)))
        self.argv = [
            sandbox.prlimit, *sandbox.prlimit_args(), "--",
            sandbox.bwrap, "--args", str(self._child_ends[2]), sandbox.python, CODE_PATH,
        ]  # fmt: skip
        self.kwargs: dict[str, Any] = {
            "env": {},  # bwrap's own environment is visible as /proc/1/environ inside
            "pass_fds": tuple(self._child_ends),
            "start_new_session": True,
        }
        if sandbox._as_nobody:
            self.kwargs.update(user=NOBODY, group=NOBODY, extra_groups=[])

    def close_child_ends(self) -> None:
        """Once the child has them; otherwise the info pipe would never reach end of file."""
        for fd in self._child_ends:
            os.close(fd)
        self._child_ends = []

    def __enter__(self) -> _Spawn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close_child_ends()
        os.close(self.info)


async def _supervise(
    proc: asyncio.subprocess.Process, sinks: tuple[bytearray, bytearray], budget: int,
    stdin: str | None,
) -> None:  # fmt: skip
    async def pump(stream: asyncio.StreamReader | None, sink: bytearray) -> None:
        assert stream is not None
        while chunk := await stream.read(65536):
            sink += chunk
            if sum(map(len, sinks)) > budget:
                _kill(proc)  # the caller keeps the first ``budget`` bytes
                return

    async def feed() -> None:
        if proc.stdin is None or stdin is None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin.encode())
            await proc.stdin.drain()
            proc.stdin.close()

    await asyncio.gather(pump(proc.stdout, sinks[0]), pump(proc.stderr, sinks[1]), feed())
    await proc.wait()


def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the outer bwrap; --die-with-parent takes PID 1 and its namespace with it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


async def _teardown(proc: asyncio.subprocess.Process, info_fd: int) -> None:
    """Reap bwrap and read both pipes to their end, so that asyncio closes its transports."""
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        async with asyncio.timeout(_TEARDOWN_SECONDS):
            await asyncio.gather(proc.wait(), _drain(proc.stdout), _drain(proc.stderr))
            await _namespace_gone(info_fd)
    except TimeoutError:
        log.warning("a sandbox did not exit within %g s of SIGKILL", _TEARDOWN_SECONDS)


async def _drain(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.read(65536):
        pass


async def _namespace_gone(info_fd: int) -> None:
    """Wait for the sandbox's PID 1 (whose exit kills its namespace); bwrap may exit first."""
    try:
        info = json.loads(os.read(info_fd, 65536) or b"{}")
        pidfd = os.pidfd_open(int(info["child-pid"]))
    except (BlockingIOError, ValueError, KeyError, ProcessLookupError):
        return  # bwrap never started the sandbox, or it is already gone
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(pidfd, _settle, gone)
    try:
        await gone
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)  # not CLOEXEC: the child inherits it through pass_fds
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _top_level_links() -> list[str]:
    """Mirror /bin, /lib… : symlinks into /usr on merged-/usr systems, else read-only binds."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _tasks_of(uid: int) -> int:
    """Processes and threads whose real uid is ``uid`` — what RLIMIT_NPROC counts."""
    total = 0
    for entry in os.scandir("/proc"):
        with contextlib.suppress(OSError):  # exited meanwhile, or hidden from us
            # The directory's owner (the effective uid) is a cheap first filter.
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                status = Path(entry.path, "status").read_text()
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                if int(fields["Uid"].split()[0]) == uid:
                    total += int(fields["Threads"])
    return total
