"""Users and their sessions. Tokens are never stored, only their SHA-256."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from agentplatform.domain.identity import Principal
from agentplatform.domain.ids import new_id
from agentplatform.security.tokens import hash_token, new_token
from agentplatform.store.db import Database
from agentplatform.store.tables import Session, User, utcnow


class IdentityRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_guest(self, ttl: timedelta) -> tuple[str, Principal]:
        """A new guest user and session; returns the raw token (shown once) and the principal."""
        token = new_token()
        now = utcnow()
        user = User(id=new_id(), kind="guest", display_name="Guest", created_at=now)
        session = Session(
            id=new_id(),
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + ttl,
        )
        async with self._db.transaction() as tx:
            tx.add(user)
            await tx.flush()
            tx.add(session)
        return token, _principal(user, session)

    async def resolve(self, token: str, *, now: datetime | None = None) -> Principal | None:
        """The principal for a live (unexpired, unrevoked) token, else None."""
        moment = now or utcnow()
        query = (
            select(Session, User)
            .join(User, User.id == Session.user_id)
            .where(
                Session.token_hash == hash_token(token),
                Session.revoked_at.is_(None),
                Session.expires_at > moment,
            )
        )
        async with self._db.read() as tx:
            row = (await tx.execute(query)).first()
        if row is None:
            return None
        session, user = row
        return _principal(user, session)

    async def revoke(self, session_id: str) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                update(Session)
                .where(Session.id == session_id, Session.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )


def _principal(user: User, session: Session) -> Principal:
    return Principal(
        user_id=user.id,
        session_id=session.id,
        kind=user.kind,
        display_name=user.display_name,
        user_created_at=user.created_at,
        expires_at=session.expires_at,
    )
