"""Session tokens: 256 bits from the OS CSPRNG, stored only as a SHA-256 digest.

A fast hash is right here: the token is random and long, so there is nothing to brute-force,
and the lookup on every request must stay cheap. (Passwords would take argon2.)
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
