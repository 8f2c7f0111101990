"""ICE host addresses (``RTC_NODE_IP``): which local IPs aiortc peers gather and advertise.

aioice enumerates interfaces itself and skips ``127.0.0.1`` and ``::1``, so a
peer in a loopback-only network namespace gathers no candidate at all. This
module is the one place that overrides that choice: :func:`use_host_addresses`
makes every aiortc peer of this process gather exactly the given addresses
(loopback included); an empty list restores aioice's own enumeration.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import aioice.ice

__all__ = ["parse_node_ips", "use_host_addresses"]

_ORIGINAL = aioice.ice.get_host_addresses


def parse_node_ips(text: str) -> tuple[str, ...]:
    """Parse ``RTC_NODE_IP``: a comma-separated list of IP addresses (may be empty)."""
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    for item in items:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            raise ValueError(f"RTC_NODE_IP: {item!r} is not an IP address") from None
    return items


def use_host_addresses(ips: Sequence[str]) -> None:
    """Gather ICE host candidates on exactly ``ips`` (process-wide); empty: aioice's default."""
    if not ips:
        aioice.ice.get_host_addresses = _ORIGINAL
        return
    chosen = tuple(ips)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [ip for ip in chosen
                if (use_ipv4 if ipaddress.ip_address(ip).version == 4 else use_ipv6)]

    aioice.ice.get_host_addresses = host_addresses
