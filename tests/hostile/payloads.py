"""Hostile request bodies and WebSocket frames, shared by the HTTP and WebSocket tests.

Each payload is raw bytes plus the content type it is sent with, so nothing on our side
re-encodes (or refuses to encode) what an attacker would send on the wire. ``PAYLOADS`` break
the body as a whole; ``field_attacks`` take a body that is otherwise valid for a route and
put one hostile value (NUL, lone surrogates, huge numbers) in one field, or repeat a key, so
that only that value can be the reason for a refusal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JSON = "application/json"
MIB = 1024 * 1024
DEEP = 10_000


@dataclass(frozen=True, slots=True)
class Payload:
    id: str
    body: bytes
    content_type: str | None = JSON

    @property
    def is_text(self) -> bool:
        """Whether the bytes are UTF-8 (a WebSocket text frame) rather than binary."""
        try:
            self.body.decode()
        except UnicodeDecodeError:
            return False
        return True


def _big_string_object(size: int) -> bytes:
    """A JSON object whose one string field makes the body ``size`` bytes long."""
    head, tail = b'{"name": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


PAYLOADS: list[Payload] = [
    # Not JSON at all.
    Payload("truncated", b'{"name": '),
    Payload("single-quotes", b"{'name': 'x'}"),
    Payload("empty", b""),
    Payload("trailing-garbage", b'{"name": "x"} {"name": "y"}'),
    Payload("nan", b'{"name": NaN, "temperature": NaN}'),
    Payload("invalid-utf8", b'{"name": "\xff\xfe\xfd"}'),
    Payload("raw-nul", b'{"name": "a\x00b"}'),
    # Wrong content type (the body itself would be fine).
    Payload("text-plain", b'{"name": "x"}', "text/plain"),
    Payload("form", b"name=x", "application/x-www-form-urlencoded"),
    Payload("multipart", b"--b\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),
    Payload("no-content-type", b'{"name": "x"}', None),
    Payload("json-charset-latin1", b'{"name": "\xe9"}', "application/json; charset=latin-1"),
    # JSON of the wrong type.
    Payload("array", b"[]"),
    Payload("string", b'"name"'),
    Payload("number", b"42"),
    Payload("null", b"null"),
    Payload("true", b"true"),
    # Large but under the 1 MiB limit (refused by validation), just over it, and 10 MiB.
    Payload("1mb", _big_string_object(1_000_000)),
    Payload("1mib", _big_string_object(MIB + 1)),
    Payload("10mib", _big_string_object(10 * MIB)),
    # Deeply nested.
    Payload("deep-arrays", b"[" * DEEP + b"]" * DEEP),
    Payload("deep-objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    Payload("deep-unclosed", b"[" * DEEP),
]
OVERSIZED = {"1mib", "10mib"}

# Values put in one field of an otherwise valid body, as raw JSON text.
NUL_VALUE = {"escaped-nul": b'"a\\u0000b"'}
HOSTILE_VALUES: dict[str, bytes] = {
    "lone-high-surrogate": b'"\\ud800"',
    "lone-low-surrogate": b'"x\\udfffy"',
    "float-overflow": b"1e400",
    "int-1000-digits": b"1" + b"0" * 1000,
    "int-5000-digits": b"1" + b"0" * 5000,
}
_MARK = "__hostile_value__"


def with_value(body: dict[str, Any], field: str, raw: bytes) -> bytes:
    """``body`` as JSON with ``field`` set to the raw JSON text ``raw`` (in a list if one was)."""
    template = json.dumps({**body, field: [_MARK] if isinstance(body[field], list) else _MARK})
    return template.encode().replace(f'"{_MARK}"'.encode(), raw)


def with_duplicate(body: dict[str, Any], field: str) -> bytes:
    """``body`` as JSON with ``field`` given twice: first a hostile value, then the valid one."""
    first = json.dumps({field: "evil" if isinstance(body[field], str) else 0})[1:-1]
    return ("{" + first + ", " + json.dumps(body)[1:]).encode()


def field_attacks(body: dict[str, Any], values: dict[str, bytes] = HOSTILE_VALUES) -> list[Payload]:
    """One payload per (field of ``body``, hostile value)."""
    return [
        Payload(f"{field}={name}", with_value(body, field, raw))
        for field in body
        for name, raw in values.items()
    ]


def duplicate_attacks(body: dict[str, Any]) -> list[Payload]:
    """One payload per field of ``body``, that field given twice."""
    return [Payload(f"duplicate-{field}", with_duplicate(body, field)) for field in body]


MODEL = "anthropic:claude-sonnet-4-6"

# One valid body per route that takes one; "{...}" are the owner's ids.
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/agents"): {
        "name": "Valid",
        "description": "d",
        "instructions": "i",
        "tags": ["t"],
        "icon": "robot",
        "color": "#000000",
        "model": MODEL,
        "temperature": 0.5,
        "max_tokens": 100,
    },
    ("PATCH", "/api/agents/{agent_id}"): {
        "name": "Renamed",
        "description": "d",
        "tags": ["t"],
        "max_tokens": 100,
    },
    ("POST", "/api/conversations"): {"agent_id": "{agent_id}", "title": "t"},
    ("PATCH", "/api/conversations/{conversation_id}"): {"title": "t"},
    ("POST", "/api/agents/{agent_id}/runs"): {"input": "hi"},
    ("POST", "/api/agents/{agent_id}/chat"): {
        "content": "hi",
        "conversation_id": "{conversation_id}",
        "client_msg_id": "c1",
    },
}
