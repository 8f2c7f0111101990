"""The client's IP address, believing X-Forwarded-For only from trusted proxies, and the
key a per-IP limit counts it under."""

from __future__ import annotations

import ipaddress

__all__ = ["client_ip", "ip_key"]


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str:
    """The peer address, or, when the peer is a trusted proxy, the rightmost
    address in ``X-Forwarded-For`` that is not itself a trusted proxy."""
    ip = peer or "unknown"
    if not forwarded_for or ip not in trusted:
        return ip
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if hop not in trusted:
            return hop
    return ip


def ip_key(ip: str) -> str:
    """What a per-IP limit counts ``ip`` under: an IPv4 address as it is, an IPv6 address
    as its /64 (one host usually holds a whole /64, so counting single IPv6 addresses
    would let it walk through any limit), an IPv4-mapped IPv6 address as the IPv4
    address, anything that is not an address unchanged."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)
