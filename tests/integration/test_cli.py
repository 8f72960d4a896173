"""The installed ``agentplatform`` command migrates and serves, as ``make run`` does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def cli() -> list[str]:
    installed = Path(sys.executable).with_name("agentplatform")
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "agentplatform"]


def test_migrate_then_serve_then_stop(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AGENTPLATFORM_LOG_LEVEL": "info",
    }
    env.pop("AGENTPLATFORM_DATABASE_URL", None)  # the default: SQLite under ./data/
    migrated = subprocess.run(
        [*cli(), "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "database at revision 0" in migrated.stdout
    assert (tmp_path / "data" / "agentplatform.db").exists()

    port = free_port()
    server = subprocess.Popen(
        [*cli(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:  # wait for the server to say it is up
            if "Application startup complete" in line:
                break
        else:
            raise AssertionError("server exited before starting")
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        assert httpx.get(f"{base}/ready").status_code == 200
        created = httpx.post(f"{base}/api/auth/guest")
        assert created.status_code == 201
    finally:
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=30)
    # Uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert server.returncode in {0, -signal.SIGTERM}, rest
    assert "Application shutdown complete" in rest


def test_help_lists_commands() -> None:
    shown = subprocess.run([*cli(), "--help"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0
    assert "serve" in shown.stdout and "migrate" in shown.stdout
