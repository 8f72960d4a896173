"""Settings validate themselves and refuse nonsense."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentplatform.config import DEFAULT_DATABASE_URL, Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DATABASE_URL", "PORT", "HOST", "ALLOWED_ORIGINS", "SESSION_TTL_DAYS"):
        monkeypatch.delenv(f"AGENTPLATFORM_{key}", raising=False)
    settings = Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.session_ttl.days == 30
    assert settings.redis_url is None


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTPLATFORM_ALLOWED_ORIGINS", "https://a.example, https://b.example/")
    monkeypatch.setenv("AGENTPLATFORM_PORT", "9000")
    monkeypatch.setenv("AGENTPLATFORM_SESSION_TTL_DAYS", "0.5")
    settings = Settings()
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.port == 9000
    assert settings.session_ttl.total_seconds() == 12 * 3600


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DATABASE_URL", "mysql://x"),
        ("DATABASE_URL", "postgresql://sync-driver"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("SESSION_TTL_DAYS", "0"),
        ("LOG_LEVEL", "chatty"),
        ("DATABASE_POOL_SIZE", "0"),
    ],
)
def test_nonsense_is_refused(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(f"AGENTPLATFORM_{key}", value)
    with pytest.raises(ValidationError):
        Settings()
