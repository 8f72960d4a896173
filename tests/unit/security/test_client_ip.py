"""The client address behind proxies, and the key an address is counted under."""

from __future__ import annotations

import pytest

from agentplatform.security.client_ip import UNKNOWN, ClientAddress, parse_networks, rate_key

PROXIES = ClientAddress(parse_networks(["10.0.0.0/8", "2001:db8:ffff::/48"]))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", [], "203.0.113.9"),
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.2", [], "10.0.0.2"),  # a trusted peer with no header is itself the client
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["1.1.1.1, 2.2.2.2, 198.51.100.1"], "198.51.100.1"),  # left is the client's
        ("10.0.0.2", ["1.1.1.1, 198.51.100.1, 10.0.0.7"], "198.51.100.1"),  # two proxies
        ("10.0.0.2", ["1.1.1.1", "198.51.100.1"], "198.51.100.1"),  # repeated headers join
        ("10.0.0.2", ["10.0.0.9, 10.0.0.8"], "10.0.0.9"),  # all trusted: the left-most
        ("10.0.0.2", ["garbage, 198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["198.51.100.1, garbage"], "10.0.0.2"),  # a bad hop stops the walk
        ("10.0.0.2", ["198.51.100.1:5555"], "198.51.100.1"),  # a port is not an address
        ("10.0.0.2", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("2001:db8:ffff::1", ["2001:db8:1::5"], "2001:db8:1::5"),
        ("::ffff:10.0.0.2", ["198.51.100.1"], "198.51.100.1"),  # IPv4-mapped peer
        (None, ["198.51.100.1"], UNKNOWN),
    ],
)
def test_resolve(peer: str | None, forwarded: list[str], client: str) -> None:
    assert PROXIES.resolve(peer, forwarded) == client


def test_no_trusted_proxies_never_reads_the_header() -> None:
    assert ClientAddress().resolve("10.0.0.2", ["198.51.100.1"]) == "10.0.0.2"


def test_rate_key_counts_ipv6_per_64() -> None:
    assert rate_key("198.51.100.1") == "198.51.100.1"
    assert (
        rate_key("2001:db8:1:2:aaaa::1")
        == rate_key("2001:db8:1:2:bbbb::2")
        == ("2001:db8:1:2::/64")
    )
    assert rate_key("2001:db8:1:3::1") != rate_key("2001:db8:1:2::1")
    assert rate_key("unknown") == "unknown"


def test_parse_networks_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        parse_networks(["10.0.0.0/8", "not-a-network"])
