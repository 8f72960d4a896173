"""Apply Alembic migrations programmatically (used by the CLI and the tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from agentplatform.store.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def _run(db: Database, step: Callable[[Config], None]) -> None:
    config = alembic_config(db.url)

    def _with_connection(connection: Connection) -> None:
        config.attributes["connection"] = connection
        step(config)

    async with db.engine.begin() as conn:
        await conn.run_sync(_with_connection)


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` over one of the database's own connections."""
    await _run(db, lambda config: command.upgrade(config, revision))


async def downgrade(db: Database, revision: str) -> None:
    """Take the schema back down to ``revision`` (``base`` empties it)."""
    await _run(db, lambda config: command.downgrade(config, revision))


async def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_read)
