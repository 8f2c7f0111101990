"""The client's IP address, believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

__all__ = ["client_ip"]


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
