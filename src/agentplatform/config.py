"""Settings read from the environment (prefix ``AGENTPLATFORM_``), validated at start-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agentplatform.security.client_ip import parse_networks
from agentplatform.security.ratelimit import parse_rates

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/agentplatform.db"
_SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
MIN_METRICS_TOKEN_LENGTH = 16


class Settings(BaseSettings):
    """Everything the process can be told from outside; nothing else is read from os.environ."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTPLATFORM_", extra="ignore", frozen=True, validate_default=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=10, ge=1, le=200)
    redis_url: str | None = None
    default_model: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    local_model_path: Path | None = None
    model_cache_dir: Path = Path("./data/models")
    provider_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    # Provider SDKs keep their own variable names (no prefix).
    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BASE_URL")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    session_ttl_days: float = Field(default=30.0, gt=0, le=3650)
    cookie_secure: bool = False
    log_level: str = "info"
    # Logs: readable lines on a terminal, JSON lines otherwise ("auto"), or forced.
    log_format: Literal["auto", "json", "text"] = "auto"
    # When set, GET /metrics needs "Authorization: Bearer <metrics_token>".
    metrics_token: SecretStr | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_json_depth: int = Field(default=32, ge=4, le=1000)
    ws_max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    run_heartbeat_seconds: float = Field(default=2.0, gt=0, le=60)
    run_lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Tools
    workspace_dir: Path = Path("./data/workspaces")
    http_fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    mcp_config: Path | None = None
    # Limits and quotas (README "Operating"). Rates: "<n>/<second|minute|hour|day>", or
    # several joined by ";" that must all pass. Counted in Redis when redis_url is set.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)  # CIDRs
    rate_limits: bool = True  # off: no rate limits or concurrency caps (quotas still apply)
    rate_limit_guest_sessions: str = "30/hour"  # guest sessions created per client address
    # API requests per client address; the per-second part caps bursts, so one address
    # cannot spend its whole minute in one second of a small server's capacity.
    rate_limit_ip: str = "20/second;600/minute"
    rate_limit_user: str = "300/minute"  # API requests per user
    rate_limit_chat: str = "30/minute"  # chat messages per user
    ws_connections_per_user: int = Field(default=10, ge=0, le=10_000)  # 0: no cap
    runs_per_user: int = Field(default=3, ge=0, le=10_000)  # concurrent runs; 0: no cap
    guest_max_agents: int = Field(default=100, ge=0)  # 0: unlimited
    guest_messages_per_day: int = Field(default=200, ge=0)
    guest_tokens_per_day: int = Field(default=200_000, ge=0)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(_SUPPORTED_DRIVERS):
            raise ValueError(
                "database_url must start with one of: " + ", ".join(_SUPPORTED_DRIVERS)
            )
        return value

    @field_validator("allowed_origins", "http_fetch_allow_hosts", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("metrics_token")
    @classmethod
    def _strong_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(f"metrics_token must be at least {MIN_METRICS_TOKEN_LENGTH} chars")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        try:
            return [str(network) for network in parse_networks(value)]
        except ValueError as exc:
            raise ValueError(f"trusted_proxies must be IP addresses or CIDRs: {exc}") from None

    @field_validator(
        "rate_limit_guest_sessions", "rate_limit_ip", "rate_limit_user", "rate_limit_chat"
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rates(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be debug, info, warning or error")
        return level

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(days=self.session_ttl_days)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
