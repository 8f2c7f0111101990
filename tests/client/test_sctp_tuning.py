"""The SCTP tuning of the CLI (``rtchub.client.sctp_tuning``).

* Its assumptions about aiortc hold (this fails naming the one an upgrade broke).
* The negotiation rule: wide packets only when the peer advertised them and is on
  this host.
* Two tuned aiortc peers in this process move data intact through wide packets
  while datagrams are dropped in both directions.
* A tuned CLI and an untuned one (``RTCHUB_SCTP_TUNING=off``) still transfer,
  in both roles, at the stock packet size.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, rtcsctptransport

from rtchub.client import sctp_tuning
from rtchub.client.sctp_tuning import STOCK_PACKET, WIDE_PACKET, Tuning, negotiate
from rtchub.media.aiortc_adapter import configure_ice
from tests.client.test_cli import _env, _finish, _read_code, _spawn
from tests.support import running

TIMEOUT = 60.0

HOST_A = "a=candidate:1 1 udp 2130706431 {ip} 40000 typ host\r\n"


def _sdp(*ips: str) -> str:
    return "v=0\r\n" + "".join(HOST_A.format(ip=ip) for ip in ips)


def test_aiortc_is_as_the_tuning_assumes() -> None:
    found = sctp_tuning.problems()
    assert found == [], "sctp_tuning's assumptions about aiortc broke:\n" + "\n".join(found)
    assert sctp_tuning.enabled({})


def test_a_changed_aiortc_turns_the_tuning_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtcsctptransport, "USERDATA_MAX_LENGTH", 1000)
    found = sctp_tuning.problems()
    assert any("USERDATA_MAX_LENGTH is 1000" in item for item in found)
    assert not sctp_tuning.enabled({})


def test_the_environment_turns_the_tuning_off() -> None:
    assert not sctp_tuning.enabled({"RTCHUB_SCTP_TUNING": "off"})
    assert not sctp_tuning.enabled({"RTCHUB_SCTP_TUNING": "0"})
    assert sctp_tuning.enabled({"RTCHUB_SCTP_TUNING": "on"})


def test_wide_packets_only_for_a_tuned_peer_on_this_host() -> None:
    wide = sctp_tuning.advertise(True)
    assert sctp_tuning.advertise(False) == {}
    here, there = _sdp("192.0.2.7", "127.0.0.1"), _sdp("192.0.2.7")
    assert negotiate(True, wide, here, there) == WIDE_PACKET
    assert negotiate(True, wide, _sdp("127.0.0.1"), _sdp("127.0.0.1")) == WIDE_PACKET
    assert negotiate(True, wide, _sdp("127.0.0.1"), _sdp("::1")) == WIDE_PACKET
    assert negotiate(True, {"sctpPacket": 4000}, here, there) == 4000
    assert negotiate(True, {"sctpPacket": 10**9}, here, there) == WIDE_PACKET
    # an untuned peer (no field), or garbage in it
    for frame in ({}, {"sctpPacket": True}, {"sctpPacket": "16384"}, {"sctpPacket": 500}):
        assert negotiate(True, frame, here, there) == STOCK_PACKET
    # we are untuned
    assert negotiate(False, wide, here, there) == STOCK_PACKET
    # the peer offered an address that is not ours, an mDNS name, or nothing
    assert negotiate(True, wide, here, _sdp("192.0.2.7", "198.51.100.1")) == STOCK_PACKET
    assert negotiate(True, wide, here, _sdp("x.local")) == STOCK_PACKET
    assert negotiate(True, wide, here, "v=0\r\n") == STOCK_PACKET


class _Lossy:
    """Drops every ``every``-th DTLS application-data datagram one ICE transport sends,
    and records the largest one it passed."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], every: int) -> None:
        self._send = send
        self._every = every
        self._seen = 0
        self.dropped = 0
        self.largest = 0

    async def __call__(self, data: bytes) -> None:
        if data[:1] == b"\x17":  # a DTLS application_data record
            self._seen += 1
            self.largest = max(self.largest, len(data))
            if self._seen % self._every == 0:
                self.dropped += 1
                return
        await self._send(data)


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


@asynccontextmanager
async def _tuned_pair(packet: int) -> AsyncIterator[tuple[RTCDataChannel, RTCDataChannel,
                                                          list[Tuning]]]:
    """Two tuned peers of this process on 127.0.0.1, and their open data channel."""
    config = RTCConfiguration(iceServers=[])
    a, b = RTCPeerConnection(config), RTCPeerConnection(config)
    tunings: list[Tuning] = []
    try:
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        got: asyncio.Future[RTCDataChannel] = asyncio.get_running_loop().create_future()
        channel = a.createDataChannel("bulk", ordered=True)
        configure_ice(a, ["127.0.0.1"], None)
        channel.on("open", lambda: _settle(opened, None))
        b.on("datachannel", lambda ch: _settle(got, ch))
        await a.setLocalDescription(await a.createOffer())
        tunings.append(Tuning.apply(a))
        await b.setRemoteDescription(a.localDescription)
        configure_ice(b, ["127.0.0.1"], None)
        await b.setLocalDescription(await b.createAnswer())
        tunings.append(Tuning.apply(b))
        for tuning in tunings:
            tuning.use_packet(packet)
        await a.setRemoteDescription(b.localDescription)
        await asyncio.wait_for(opened, TIMEOUT)
        far = await asyncio.wait_for(got, TIMEOUT)
        yield channel, far, tunings
    finally:
        await a.close()
        await b.close()
        for tuning in tunings:
            tuning.close()


@pytest.mark.webrtc
@pytest.mark.parametrize("packet", [WIDE_PACKET, STOCK_PACKET])
async def test_tuned_peers_survive_loss_intact(packet: int) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 4321)
    stock = rtcsctptransport.USERDATA_MAX_LENGTH
    async with _tuned_pair(packet) as (near, far, tunings):
        lossy = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as fresh:
            default = fresh.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        for tuning in tunings:
            assert tuning.sctp is not None
            ice = tuning.sctp.transport.transport
            for protocol in ice._connection._protocols:
                sock = protocol.transport.get_extra_info("socket")
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) > default
            wrapper = _Lossy(ice._send, every=23)
            ice._send = wrapper
            lossy.append(wrapper)
        received = hashlib.sha256()
        count = 0
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_message(message: bytes | str) -> None:
            nonlocal count
            if isinstance(message, str):
                done.set_result(None)
                return
            received.update(message)
            count += len(message)

        far.on("message", on_message)
        low = asyncio.Event()
        near.bufferedAmountLowThreshold = 256 * 1024
        near.on("bufferedamountlow", low.set)
        for pos in range(0, len(payload), 64 * 1024):
            near.send(payload[pos:pos + 64 * 1024])
            if near.bufferedAmount > 1024 * 1024:
                low.clear()
                await asyncio.wait_for(low.wait(), TIMEOUT)
        near.send("done")
        await asyncio.wait_for(done, TIMEOUT)
    assert count == len(payload)
    assert received.hexdigest() == hashlib.sha256(payload).hexdigest()
    sender, receiver = lossy
    assert sender.dropped > 3 and receiver.dropped > 0  # data and SACKs were lost
    # wide: one datagram carried a whole wide packet; stock: none exceeded aiortc's size
    assert sender.largest > WIDE_PACKET if packet == WIDE_PACKET else sender.largest < 1300
    assert stock == rtcsctptransport.USERDATA_MAX_LENGTH  # close() put aiortc back


async def _transfer(tmp_path: Path, sender_env: dict[str, str], receiver_env: dict[str, str]
                    ) -> tuple[str, str]:
    payload = os.urandom(1024 * 1024 + 77)
    source = tmp_path / "mixed.bin"
    source.write_bytes(payload)
    outdir = tmp_path / "out"
    outdir.mkdir()
    sender = await _spawn("send", str(source), env=sender_env)
    code, _ = await _read_code(sender)
    receiver = await _spawn("receive", code, "--yes", "-o", str(outdir), env=receiver_env)
    (rc_r, _, err_r), (rc_s, _, err_s) = await asyncio.gather(_finish(receiver),
                                                             _finish(sender))
    assert rc_r == 0, err_r
    assert rc_s == 0, err_s
    assert (outdir / "mixed.bin").read_bytes() == payload
    return err_s, err_r


@pytest.mark.webrtc
async def test_a_tuned_sender_and_an_untuned_receiver(tmp_path: Path) -> None:
    async with running() as srv:
        err_s, err_r = await _transfer(tmp_path, _env(srv.url),
                                       {**_env(srv.url), "RTCHUB_SCTP_TUNING": "off"})
    assert f"SCTP packets of up to {STOCK_PACKET} bytes" in err_s
    assert f"SCTP packets of up to {STOCK_PACKET} bytes" in err_r


@pytest.mark.webrtc
async def test_an_untuned_sender_and_a_tuned_receiver(tmp_path: Path) -> None:
    async with running() as srv:
        err_s, err_r = await _transfer(tmp_path, {**_env(srv.url), "RTCHUB_SCTP_TUNING": "off"},
                                       _env(srv.url))
    assert f"SCTP packets of up to {STOCK_PACKET} bytes" in err_s
    assert f"SCTP packets of up to {STOCK_PACKET} bytes" in err_r
