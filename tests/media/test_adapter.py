"""The aiortc adapter: its assumptions hold, and ICE gathers exactly what is configured."""

from __future__ import annotations

import socket

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from rtchub.media import aiortc_adapter


async def test_assumptions_about_aiortc_hold() -> None:
    # If this fails after an upgrade, the message names every private detail that moved.
    await aiortc_adapter.check_assumptions()


def host_candidates(sdp: str) -> list[tuple[str, int]]:
    found = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            bits = line.split()
            found.append((bits[4], int(bits[5])))
    return found


async def gather(node_ips: list[str], ports: tuple[int, int] | None) -> list[tuple[str, int]]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio")
        aiortc_adapter.configure_ice(pc, node_ips, ports)
        await pc.setLocalDescription(await pc.createOffer())
        return host_candidates(pc.localDescription.sdp)
    finally:
        await pc.close()


async def test_gathers_the_node_ip_in_the_port_range() -> None:
    found = await gather(["127.0.0.1"], (41000, 41009))
    assert len(found) == 1
    host, port = found[0]
    assert host == "127.0.0.1"
    assert 41000 <= port <= 41009


async def test_several_node_ips() -> None:
    found = await gather(["127.0.0.1", "127.0.0.2"], None)
    assert sorted(h for h, _ in found) == ["127.0.0.1", "127.0.0.2"]


async def test_busy_ports_are_skipped_and_a_full_range_gathers_nothing() -> None:
    held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    held.bind(("127.0.0.1", 41020))
    try:
        assert await gather(["127.0.0.1"], (41020, 41020)) == []
        found = await gather(["127.0.0.1"], (41020, 41021))
        assert found == [("127.0.0.1", 41021)]
    finally:
        held.close()


@pytest.mark.parametrize("ports", [None, (41030, 41039)])
async def test_without_node_ips_aioice_skips_loopback(ports: tuple[int, int] | None) -> None:
    # aioice's own choice of addresses: never loopback (why RTC_NODE_IP exists)
    found = await gather([], ports)
    assert all(not h.startswith("127.") and h != "::1" for h, _ in found)
    if ports is not None:
        assert all(41030 <= p <= 41039 for _, p in found)
