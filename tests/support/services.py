"""Throwaway PostgreSQL and Redis servers on loopback for tests and benchmarks.

Each server is a real process started from the system binaries, listening only
on 127.0.0.1 on a freshly picked free port, with its files under a caller-given
directory.  Nothing here touches system services or system-wide state.

PostgreSQL refuses to run as root, so when the current process is root the
cluster is created in a private directory under /tmp owned by the ``postgres``
system user (Debian's package creates it) and the server binaries are run as
that user.  The pytest temporary directory is not used for the cluster in that
case because its parents are mode 0700 and not traversable by that user.

Usage::

    pg = PostgresServer.start(tmp_path)
    try:
        url = pg.create_database("app_test")
        ...
    finally:
        pg.stop()

Both server classes are also context managers.  Any server still running when
the interpreter exits is stopped by an ``atexit`` hook.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self

__all__ = [
    "PostgresServer",
    "RedisServer",
    "find_pg_bin",
    "missing_reason",
]

_LOOPBACK = "127.0.0.1"
_PG_SUPERUSER = "postgres"
_PG_SYSTEM_USER = "postgres"
_PG_REQUIRED_BINARIES = ("initdb", "postgres", "pg_isready", "createdb")
_PG_START_TIMEOUT = 60.0
_REDIS_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 30.0
_POLL_INTERVAL = 0.05
_START_ATTEMPTS = 3
# sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_LIVE: dict[int, _Stoppable] = {}


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            server.stop()


def find_pg_bin() -> Path | None:
    """Return the directory holding PostgreSQL's server binaries, or None.

    Prefers the highest version under Debian's ``/usr/lib/postgresql/*/bin``,
    then falls back to the directory of ``initdb`` on PATH.
    """
    candidates: list[tuple[tuple[int, ...], Path]] = []
    for bin_dir in Path("/usr/lib/postgresql").glob("*/bin"):
        if not (bin_dir / "initdb").is_file():
            continue
        version = tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))
        candidates.append((version, bin_dir))
    if candidates:
        return max(candidates)[1]
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    return None


def missing_reason(kind: Literal["postgres", "redis"]) -> str | None:
    """Explain why a server of ``kind`` cannot be started here, or None if it can."""
    if kind == "redis":
        if shutil.which("redis-server") is None:
            return "redis-server not found on PATH (Debian package: redis-server)"
        return None
    bin_dir = find_pg_bin()
    if bin_dir is None:
        return "PostgreSQL server binaries (initdb) not found (Debian package: postgresql)"
    missing = [name for name in _PG_REQUIRED_BINARIES if not (bin_dir / name).is_file()]
    if missing:
        return f"PostgreSQL binaries missing from {bin_dir}: {', '.join(missing)}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_PG_SYSTEM_USER)
        except KeyError:
            return (
                f"running as root and there is no {_PG_SYSTEM_USER!r} system user "
                "to run PostgreSQL as"
            )
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<could not read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty>"


def _clean_env() -> dict[str, str]:
    """The current environment minus libpq variables that could redirect the tools."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _terminate(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig``, escalate to SIGKILL after a timeout, and reap the process."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=_STOP_TIMEOUT)


class _RunAs:
    """How to run PostgreSQL binaries: as ourselves, or as the postgres system user."""

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0
        self.uid = -1
        self.gid = -1
        if self.as_root:
            entry = pwd.getpwnam(_PG_SYSTEM_USER)
            self.uid = entry.pw_uid
            self.gid = entry.pw_gid

    def popen_kwargs(self) -> dict[str, Any]:
        if not self.as_root:
            return {}
        # Drop root's supplementary groups and gid as well as the uid.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, path: Path) -> None:
        if self.as_root:
            os.chown(path, self.uid, self.gid)


class PostgresServer:
    """A throwaway PostgreSQL cluster with trust auth on 127.0.0.1."""

    url: str
    port: int
    user: str
    data_dir: Path
    log_path: Path

    def __init__(
        self,
        *,
        bin_dir: Path,
        cluster_dir: Path,
        log_path: Path,
        port: int,
        proc: subprocess.Popen[bytes],
        remove_cluster_dir: bool,
    ) -> None:
        self._bin_dir = bin_dir
        self._cluster_dir = cluster_dir
        self._remove_cluster_dir = remove_cluster_dir
        self._proc = proc
        self.port = port
        self.user = _PG_SUPERUSER
        self.data_dir = cluster_dir / "data"
        self.log_path = log_path
        self.url = self.url_for("postgres")

    @classmethod
    def start(cls, base_dir: Path) -> PostgresServer:
        """Create a new cluster under ``base_dir`` (or /tmp when root) and start it.

        Raises RuntimeError, including the server log tail, if it does not come up.
        """
        reason = missing_reason("postgres")
        if reason is not None:
            raise RuntimeError(f"cannot start PostgreSQL: {reason}")
        bin_dir = find_pg_bin()
        assert bin_dir is not None
        run_as = _RunAs()
        base_dir = Path(base_dir).resolve()
        base_dir.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix="postgres-", dir=base_dir))
        log_path = work_dir / "postgres.log"
        if run_as.as_root:
            # The postgres user must be able to reach the cluster; /tmp is 1777.
            cluster_dir = Path(tempfile.mkdtemp(prefix="agentplatform-pg-", dir="/tmp"))
        else:
            cluster_dir = work_dir
        try:
            run_as.chown(cluster_dir)
            _initdb(bin_dir, cluster_dir, work_dir / "initdb.log", run_as)
            socket_dir = cluster_dir / "sock"
            socket_dir.mkdir(mode=0o700)
            run_as.chown(socket_dir)
            for _attempt in range(_START_ATTEMPTS):
                port = _free_port()
                proc = _spawn_postgres(bin_dir, cluster_dir, socket_dir, log_path, port, run_as)
                server = cls(
                    bin_dir=bin_dir,
                    cluster_dir=cluster_dir,
                    log_path=log_path,
                    port=port,
                    proc=proc,
                    remove_cluster_dir=run_as.as_root,
                )
                _LIVE[id(server)] = server
                if server._wait_ready():
                    return server
                server._kill_quietly(keep_cluster=True)
                if "could not bind" not in _log_tail(log_path, lines=200):
                    break
            raise RuntimeError(
                f"PostgreSQL did not become ready; log {log_path}:\n{_log_tail(log_path)}"
            )
        except BaseException:
            if run_as.as_root:
                shutil.rmtree(cluster_dir, ignore_errors=True)
            raise

    def url_for(self, database: str) -> str:
        """SQLAlchemy (asyncpg) URL for ``database`` on this server."""
        return f"postgresql+asyncpg://{self.user}@{_LOOPBACK}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Run CREATE DATABASE ``name`` and return its SQLAlchemy URL."""
        if not name or "/" in name:
            raise ValueError(f"invalid database name: {name!r}")
        result = subprocess.run(
            [
                str(self._bin_dir / "createdb"),
                "--host",
                _LOOPBACK,
                "--port",
                str(self.port),
                "--username",
                self.user,
                "--no-password",
                name,
            ],
            capture_output=True,
            text=True,
            env=_clean_env(),
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"createdb {name!r} failed: {result.stderr.strip()}")
        return self.url_for(name)

    def stop(self) -> None:
        """Fast-shutdown the server and wait for it; idempotent."""
        _LIVE.pop(id(self), None)
        # SIGINT is PostgreSQL's "fast" shutdown: roll back and disconnect clients.
        _terminate(self._proc, signal.SIGINT)
        if self._remove_cluster_dir:
            shutil.rmtree(self._cluster_dir, ignore_errors=True)

    def pause(self) -> None:
        """Shut the server down but keep its cluster, so ``resume`` brings the same data back."""
        _terminate(self._proc, signal.SIGINT)

    def resume(self) -> None:
        """Start the paused server again on the same port; raises if it does not come up."""
        socket_dir = self._cluster_dir / "sock"
        self._proc = _spawn_postgres(
            self._bin_dir, self._cluster_dir, socket_dir, self.log_path, self.port, _RunAs()
        )
        if not self._wait_ready():
            raise RuntimeError(f"PostgreSQL did not come back; log:\n{_log_tail(self.log_path)}")

    def _kill_quietly(self, *, keep_cluster: bool) -> None:
        _LIVE.pop(id(self), None)
        _terminate(self._proc, signal.SIGQUIT)
        if self._remove_cluster_dir and not keep_cluster:
            shutil.rmtree(self._cluster_dir, ignore_errors=True)

    def _wait_ready(self) -> bool:
        # Like ``pg_ctl -w``: wait for *our* postmaster to record "ready" in its
        # pid file, so a server that won a race for the port is never mistaken
        # for ours; then confirm over TCP with pg_isready.
        deadline = time.monotonic() + _PG_START_TIMEOUT
        pid_file = self.data_dir / "postmaster.pid"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                lines = pid_file.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[0] == str(self._proc.pid) and lines[7].strip() == "ready":
                return self._isready()
            time.sleep(_POLL_INTERVAL)
        return False

    def _isready(self) -> bool:
        cmd = [
            str(self._bin_dir / "pg_isready"),
            "--quiet",
            "--host",
            _LOOPBACK,
            "--port",
            str(self.port),
            "--username",
            self.user,
            "--dbname",
            "postgres",
            "--timeout",
            "10",
        ]
        result = subprocess.run(cmd, env=_clean_env(), check=False)
        return result.returncode == 0 and self._proc.poll() is None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PostgresServer(url={self.url!r}, data_dir={str(self.data_dir)!r})"


def _initdb(bin_dir: Path, cluster_dir: Path, log_path: Path, run_as: _RunAs) -> None:
    cmd = [
        str(bin_dir / "initdb"),
        "--pgdata",
        str(cluster_dir / "data"),
        "--username",
        _PG_SUPERUSER,
        "--auth",
        "trust",
        "--encoding",
        "UTF8",
        "--locale",
        "C",
        "--no-sync",
        "--no-instructions",
    ]
    with log_path.open("wb") as log:
        result = subprocess.run(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cluster_dir,
            env=_clean_env(),
            check=False,
            **run_as.popen_kwargs(),
        )
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed (exit {result.returncode}):\n{_log_tail(log_path)}")


def _spawn_postgres(
    bin_dir: Path,
    cluster_dir: Path,
    socket_dir: Path,
    log_path: Path,
    port: int,
    run_as: _RunAs,
) -> subprocess.Popen[bytes]:
    socket_path = f"{socket_dir}/.s.PGSQL.{port}"
    # Too long a path cannot be a unix socket; TCP on loopback is all we use anyway.
    socket_dirs = str(socket_dir) if len(socket_path) <= _MAX_SOCKET_PATH else ""
    settings: Mapping[str, str] = {
        "listen_addresses": _LOOPBACK,
        "port": str(port),
        "unix_socket_directories": socket_dirs,
        "max_connections": "200",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    cmd: list[str] = [str(bin_dir / "postgres"), "-D", str(cluster_dir / "data")]
    for key, value in settings.items():
        cmd += ["-c", f"{key}={value}"]
    return _spawn(cmd, log_path, cwd=cluster_dir, extra=run_as.popen_kwargs())


def _spawn(
    cmd: Sequence[str], log_path: Path, *, cwd: Path, extra: Mapping[str, Any]
) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=_clean_env(),
            **extra,
        )


class RedisServer:
    """A throwaway Redis server on 127.0.0.1 with persistence disabled."""

    url: str
    port: int
    log_path: Path

    def __init__(self, *, port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.url = f"redis://{_LOOPBACK}:{port}/0"
        self._proc = proc

    @classmethod
    def start(cls, base_dir: Path) -> RedisServer:
        """Start redis-server with its working directory under ``base_dir``.

        Raises RuntimeError, including the server log tail, if it does not come up.
        """
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(f"cannot start Redis: {missing_reason('redis')}")
        base_dir = Path(base_dir).resolve()
        base_dir.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix="redis-", dir=base_dir))
        log_path = work_dir / "redis.log"
        for _attempt in range(_START_ATTEMPTS):
            port = _free_port()
            cmd = [
                binary,
                "--port",
                str(port),
                "--bind",
                _LOOPBACK,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(work_dir),
            ]
            proc = _spawn(cmd, log_path, cwd=work_dir, extra={})
            server = cls(port=port, proc=proc, log_path=log_path)
            _LIVE[id(server)] = server
            if server._wait_ready():
                return server
            server.stop()
            if "in use" not in _log_tail(log_path, lines=200):
                break
        raise RuntimeError(f"Redis did not become ready; log {log_path}:\n{_log_tail(log_path)}")

    def stop(self) -> None:
        """Terminate the server and wait for it; idempotent."""
        _LIVE.pop(id(self), None)
        _terminate(self._proc, signal.SIGTERM)

    def _answers(self) -> bool:
        """True once the server on our port answers and is our process.

        ``INFO server`` reports the pid, so a server that won a race for the port
        is never mistaken for ours.
        """
        try:
            with socket.create_connection((_LOOPBACK, self.port), timeout=1.0) as sock:
                sock.sendall(b"INFO server\r\n")
                reply = b""
                while b"\r\n" not in reply:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return False
                    reply += chunk
                header, _, body = reply.partition(b"\r\n")
                if not header.startswith(b"$"):
                    return False  # e.g. "-LOADING": not ready yet
                size = int(header[1:])
                while len(body) < size:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return False
                    body += chunk
        except (OSError, ValueError):
            return False
        return f"\r\nprocess_id:{self._proc.pid}\r\n".encode() in body

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _REDIS_START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if self._answers():
                return True
            time.sleep(_POLL_INTERVAL)
        return False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(url={self.url!r})"
