"""One transfer's peer connection: the offer/answer through the relay, the verification
string, the open data channel, and an ending that tells the other side why.

The relay carries only the offer and the answer (aiortc puts every ICE
candidate in its SDP). Every step has a deadline (``TransferOptions.timeout``,
"how long the other side may stay silent"), and from the answer on, the other
side's departure (the relay's ``peer_left``, an ``abort`` in our mailbox, a
failed ICE connection) ends any wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from rtchub.client import sctp_tuning
from rtchub.client.channel import Channel
from rtchub.client.signaling import ClientError, PeerGone, Relay, Stalled
from rtchub.client.verify import fingerprint_of, verification_string
from rtchub.media.aiortc_adapter import configure_ice

__all__ = ["CHUNK", "Link", "TransferOptions", "rtc_configuration"]

#: Data channel message size: what every browser accepts, and cheaper per byte than less.
CHUNK: Final = 64 * 1024
#: The longest the ending may take (telling the other side, closing the connection).
CLOSE_TIMEOUT: Final = 2.0


@dataclass(frozen=True, slots=True)
class TransferOptions:
    """What both commands share."""

    server: str  # a checked base URL (signaling.server_url)
    yes: bool = False
    node_ips: tuple[str, ...] = ()
    timeout: float = 30.0  # how long the other side may stay silent at any step
    answer_timeout: float = 600.0  # how long the receiver may think about the question
    chunk_size: int = CHUNK
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    ask: Callable[[str], Awaitable[bool]] | None = None
    tuned: bool = True

    def say(self, text: str) -> None:
        """A result line (stdout, unless stdout carries the data)."""
        self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """A status line (stderr)."""
        self.err.write(text + "\n")
        self.err.flush()


def rtc_configuration(servers: list[dict[str, Any]]) -> RTCConfiguration:
    """The server's iceServers as aiortc wants them (never aiortc's public default)."""
    ice = [RTCIceServer(urls=s["urls"], username=s.get("username"),
                        credential=s.get("credential")) for s in servers if "urls" in s]
    return RTCConfiguration(iceServers=ice)


class Link:
    """The peer connection of one transfer, for either side."""

    def __init__(self, opts: TransferOptions, relay: Relay, config: RTCConfiguration,
                 peer: str) -> None:
        self._opts = opts
        self._relay = relay
        self._peer = peer
        self.pc = RTCPeerConnection(config)
        self._tuning = sctp_tuning.Tuning()
        self.channel: Channel | None = None
        self.verification = ""
        self._gone: ClientError | None = None
        self._got: asyncio.Future[RTCDataChannel] = asyncio.get_running_loop().create_future()
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("datachannel", self._on_datachannel)

    # -- the other side's departure -------------------------------------------------------

    def _on_state(self) -> None:
        if self.pc.connectionState == "failed":
            self._fail(PeerGone(f"the peer-to-peer connection to {self._peer} failed"))

    def _on_datachannel(self, raw: RTCDataChannel) -> None:
        if not self._got.done():
            self._got.set_result(raw)

    def _fail(self, error: ClientError) -> None:
        if self._gone is None:
            self._gone = error
        if not self._got.done():
            self._got.set_exception(error)
            self._got.exception()  # retrieved: nobody may be waiting for it
        if self.channel is not None:
            self.channel.fail(error)

    # -- the handshake --------------------------------------------------------------------

    async def _gather(self, description: Awaitable[RTCSessionDescription]) -> None:
        timeout = self._opts.timeout
        try:
            async with asyncio.timeout(timeout):
                await self.pc.setLocalDescription(await description)
        except TimeoutError:
            raise Stalled(f"gathering this machine's addresses took over {timeout:g} s"
                          ) from None

    def _agree(self, frame: dict[str, Any], remote_sdp: str) -> None:
        opts = self._opts
        if opts.tuned:
            self._tuning = sctp_tuning.Tuning.apply(self.pc)
        packet = sctp_tuning.negotiate(opts.tuned, frame, self.pc.localDescription.sdp,
                                       remote_sdp)
        if opts.tuned:
            self._tuning.use_packet(packet)
        opts.note(f"SCTP packets of up to {packet} bytes")

    def _verify(self, offerer: bool) -> None:
        local = fingerprint_of(self.pc.localDescription.sdp)
        remote = fingerprint_of(self.pc.remoteDescription.sdp)
        offer_fp, answer_fp = (local, remote) if offerer else (remote, local)
        self.verification = verification_string(offer_fp, answer_fp)
        self._relay.watch(self._fail)

    async def offer(self) -> Channel:
        """The sender's side: offer, answer, open channel."""
        opts = self._opts
        raw = self.pc.createDataChannel("rtchub-file", ordered=True)
        self.channel = Channel(raw, self._peer, opts.timeout)
        configure_ice(self.pc, opts.node_ips, None)
        await self._gather(self.pc.createOffer())
        await self._relay.send({"type": "offer", "sdp": self.pc.localDescription.sdp,
                                **sctp_tuning.advertise(opts.tuned)})
        answer = await self._relay.expect(
            "answer", opts.timeout, f"{self._peer} did not answer within {opts.timeout:g} s")
        self._agree(answer, str(answer["sdp"]))
        await self.pc.setRemoteDescription(RTCSessionDescription(str(answer["sdp"]), "answer"))
        self._verify(offerer=True)
        await self._open(self.channel)
        return self.channel

    async def answer(self) -> Channel:
        """The receiver's side: await the offer, answer, await the channel."""
        opts = self._opts
        offer = await self._relay.expect(
            "offer", opts.timeout, f"{self._peer} sent no offer within {opts.timeout:g} s")
        await self.pc.setRemoteDescription(RTCSessionDescription(str(offer["sdp"]), "offer"))
        configure_ice(self.pc, opts.node_ips, None)
        await self._gather(self.pc.createAnswer())
        self._agree(offer, str(offer["sdp"]))
        await self._relay.send({"type": "answer", "sdp": self.pc.localDescription.sdp,
                                **sctp_tuning.advertise(opts.tuned)})
        self._verify(offerer=False)
        try:
            async with asyncio.timeout(opts.timeout):
                raw = await self._got
        except TimeoutError:
            raise Stalled(self._no_path()) from None
        self.channel = Channel(raw, self._peer, opts.timeout)
        if self._gone is not None:
            self.channel.fail(self._gone)
        await self._open(self.channel)
        return self.channel

    def _no_path(self) -> str:
        return (f"no peer-to-peer connection to {self._peer} within "
                f"{self._opts.timeout:g} s; set RTC_NODE_IP (or --node-ip) to an address "
                "both sides can reach")

    async def _open(self, channel: Channel) -> None:
        await channel.opened(self._opts.timeout, self._no_path())

    # -- the ending -----------------------------------------------------------------------

    async def close(self, reason: str | None) -> None:
        """Tell the other side ``reason`` (when there is one), then close everything;
        bounded by :data:`CLOSE_TIMEOUT`."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                if reason is not None:
                    channel = self.channel
                    if channel is not None and channel.raw.readyState == "open":
                        with contextlib.suppress(Exception):
                            channel.send_control({"kind": "abort", "reason": reason})
                    await self._relay.tell(reason, CLOSE_TIMEOUT / 4)
                with contextlib.suppress(OSError):  # a dead connection may not close cleanly
                    await self.pc.close()
        except TimeoutError:
            pass
        finally:
            self._tuning.close()
            if self.channel is not None:
                self.channel.close()
