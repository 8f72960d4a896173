"""Time-ordered identifiers (UUIDv7 layout), so "newest first" is "largest id first"."""

from __future__ import annotations

import secrets
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0


def new_id() -> str:
    """A UUIDv7 string; strictly increasing within this process, random across processes."""
    global _last
    with _lock:
        ms = time.time_ns() // 1_000_000
        candidate = (ms << 74) | secrets.randbits(74)
        if candidate <= _last:
            candidate = _last + 1
        _last = candidate
    # Lay the 128 bits out as UUIDv7: 48-bit ms, version 7, 12 bits, variant, 62 bits.
    ts = candidate >> 74
    rand = candidate & ((1 << 74) - 1)
    rand_a = rand >> 62
    rand_b = rand & ((1 << 62) - 1)
    value = (ts << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))
