"""Which network addresses a user-supplied URL may reach: the SSRF guard's rule.

A CSV ``path`` or a ``callback`` comes from a client; fetched or posted to
blindly, it would let that client reach the server's own loopback services,
the private network or the cloud's metadata endpoint (169.254.169.254).
Every address such a URL resolves to, and every address a redirect leads
to, must be public unless the operator lists it in ``EVENTYARD_URL_ALLOWLIST``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allowlist(text: str) -> tuple[Network, ...]:
    """``"127.0.0.1/32, 10.0.0.0/8"`` as networks; ``ValueError`` names a bad entry."""
    networks: list[Network] = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not a CIDR network ({exc})") from exc
    return tuple(networks)


def address_refusal(address: str, allowlist: Sequence[Network] = ()) -> str | None:
    """Why ``address`` may not be reached, or ``None`` when it may.

    Allowed: addresses inside an allow-list network, and public (global)
    addresses. Refused: loopback, link-local (169.254.169.254 included),
    private, multicast, unspecified, reserved and other non-global ranges.
    An IPv4 address written as IPv6 (``::ffff:127.0.0.1``) or carried in a 6to4
    address (``2002:7f00:1::``, which a 6to4 relay delivers to 127.0.0.1) is
    judged as that IPv4 address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    if any(ip in network for network in allowlist):
        return None
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
    )
    for matches, kind in checks:
        if matches:
            article = "an" if kind[0] in "aeiou" else "a"
            return f"{ip} is {article} {kind} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None
