"""Is a set of CIDR blocks open to the whole internet? Pure facts, no Pulumi."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
"""IPv4-mapped IPv6 addresses: a block holding all of them admits every IPv4 address."""


def _network(block: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(block.strip(), strict=False)
    except ValueError:
        return None  # Not a CIDR block: AWS refuses it before any traffic flows.


def open_to_the_world(blocks: Iterable[str]) -> list[str]:
    """The blocks through which any address of the internet may connect.

    A ``/0`` of either family (``0.0.0.0/0``, ``::/0``, also written with host bits such as
    ``10.0.0.0/0``); an IPv6 block holding every IPv4-mapped address; and blocks that together
    cover a whole family (``0.0.0.0/1`` with ``128.0.0.0/1``).
    """
    given = [(b, n) for b in blocks if (n := _network(b)) is not None]
    found = [b for b, n in given if n.prefixlen == 0]
    found += [
        b
        for b, n in given
        if isinstance(n, ipaddress.IPv6Network) and n.prefixlen and n.supernet_of(_IPV4_MAPPED)
    ]
    v4 = [(b, n) for b, n in given if isinstance(n, ipaddress.IPv4Network) and b not in found]
    if list(ipaddress.collapse_addresses(n for _, n in v4)) == [ipaddress.IPv4Network("0.0.0.0/0")]:
        found += [b for b, _ in v4]
    v6 = [(b, n) for b, n in given if isinstance(n, ipaddress.IPv6Network) and b not in found]
    if list(ipaddress.collapse_addresses(n for _, n in v6)) == [ipaddress.IPv6Network("::/0")]:
        found += [b for b, _ in v6]
    return found
