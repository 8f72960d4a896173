"""Alembic environment: runs on a connection handed in by ``store.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from agentplatform.store.tables import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `agentplatform migrate`")
    _run(connection)


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported; use `agentplatform migrate`")
run()
