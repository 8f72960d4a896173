"""Who is on the other end: the client address, and the key its rate limits are counted under.

The address is the socket's peer, unless the peer is a proxy the operator trusts
(``AGENTPLATFORM_TRUSTED_PROXIES``, a list of CIDRs). Then ``X-Forwarded-For`` is read from
the right: each trusted proxy appended the address it was connected from, so the right-most
hop that is *not* a trusted proxy is the client. Everything left of it was written by the
client itself and is ignored, which is why rotating ``X-Forwarded-For`` gains nothing. From an
untrusted peer the header is never read at all.

IPv6 clients are counted per /64: one subscriber usually holds a whole /64, so counting
single addresses would let them rotate through 2**64 budgets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"  # no peer address (e.g. a Unix socket): all such clients share one budget
IPV6_PREFIX = 64


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) to networks; raises ``ValueError`` on anything else."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _address(value: str) -> IPAddress | None:
    text = value.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51234"
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddress:
    """Resolves a connection's client address given the operator's trusted proxies."""

    def __init__(self, trusted: Sequence[IPNetwork] = ()) -> None:
        self.trusted = tuple(trusted)

    def is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.trusted)

    def resolve(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str:
        """The client's address as text; ``forwarded_for`` holds the X-Forwarded-For headers."""
        peer_address = _address(peer) if peer else None
        if peer_address is None:
            return peer or UNKNOWN
        if not self.trusted or not self.is_trusted(peer_address):
            return str(peer_address)
        hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
        client = peer_address
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break  # a trusted proxy would not write garbage: stop at the last good hop
            client = address
            if not self.is_trusted(address):
                break
        return str(client)


def rate_key(address: str) -> str:
    """The budget an address is counted under: itself for IPv4, its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)
