"""CPU per forwarded copy on the SFU's packet path, in one process, without the network noise.

Run by hand::

    taskset -c 0 .venv/bin/python benchmarks/sfu_hotpath.py --subscribers 64 --rounds 5

Real VP8 packets (the 360p clip of :mod:`benchmarks.sfu_forwarding`, packetized
by aiortc, with the MID and abs-send-time extensions a publisher sends) go
through the SFU's real :class:`~rtchub.media.sfu.demux.Demuxer`,
:class:`~rtchub.media.sfu.uplink.TrackUplink` and one
:class:`~rtchub.media.sfu.downtrack.Downtrack` per subscriber. Each
subscriber's outlet is either nothing (``null``: the SFU's own Python only) or
an :class:`~rtchub.media.aiortc_adapter.SrtpWire` (``wire``): the real SRTP
protection (libsrtp, AES-CM + HMAC-SHA1) and a real ``sendto`` through a uvloop
datagram transport to a socket on loopback, around a stand-in for the DTLS
transport that holds only what the wire reads. ``--simulcast`` feeds a
three-layer track instead (each subscriber takes one layer, a third each).

It prints the process CPU per forwarded copy, best and median of the rounds.
The figure leaves out what the end-to-end benchmark also counts (RTCP, ICE
consent, aiortc's reports), and the receiving side of the packets.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import os
import socket
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any, cast

import av
import pylibsrtp
import uvloop
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcdtlstransport import State as DtlsState

from rtchub.media.aiortc_adapter import SrtpWire
from rtchub.media.fanout import ForwardingStats
from rtchub.media.sfu.demux import Demuxer
from rtchub.media.sfu.downtrack import Downtrack, payload_map
from rtchub.media.sfu.rtp import FIXED, ExtensionWriter
from rtchub.media.sfu.sdp import Codec
from rtchub.media.sfu.uplink import TrackUplink

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from benchmarks.sfu_clip import encode_clip

VP8 = Codec(96, "VP8", 90000, None, {}, ())
VP8_RTX = Codec(97, "rtx", 90000, None, {"apt": "96"}, ())
SUBSCRIBER_CODECS = {100: Codec(100, "VP8", 90000, None, {}, ()),
                     101: Codec(101, "rtx", 90000, None, {"apt": "100"}, ())}
MID_ID, ABS_ID, RID_ID = 4, 2, 10
RIDS = ("q", "h", "f")


class Nothing:
    """An outlet and an upstream that send nothing."""

    connected = True

    def send_rtp(self, packet: bytes) -> bool:
        return True

    def send_rtcp(self, packet: bytes) -> bool:
        return True


class Sender:
    """What a downtrack reads of aiortc's sender (its SSRCs; it notes its counters)."""

    def __init__(self, ssrc: int) -> None:
        self._ssrc = ssrc
        self._rtx_ssrc = ssrc + 1


def packetize(clip: list[bytes], ssrc: int, seq: int, rid: str | None,
              repeat: int) -> list[bytes]:
    """The clip's frames ``repeat`` times over as RTP with aiortc's VP8 packetizer and a
    publisher's header extensions (MID, abs-send-time; RID on a simulcast layer), sequence
    numbers and timestamps going on (SRTP refuses a sequence number sent before)."""
    encoder = Vp8Encoder()
    out: list[bytes] = []
    for number, frame in enumerate(clip * repeat):
        packet = av.Packet(frame)
        packet.pts = number * 3000
        packet.time_base = fractions.Fraction(1, 90000)
        payloads, timestamp = encoder.pack(packet)
        for i, payload in enumerate(payloads):
            elements = (bytes([(MID_ID << 4) | 0]) + b"0" + bytes([(ABS_ID << 4) | 2])
                        + b"\x00\x00\x00")
            if rid is not None:
                elements += bytes([(RID_ID << 4) | (len(rid) - 1)]) + rid.encode()
            elements += b"\x00" * (-len(elements) % 4)
            marker = 0x80 if i == len(payloads) - 1 else 0
            out.append(FIXED.pack(0x90, marker | 96, (seq + len(out)) & 0xFFFF, timestamp, ssrc)
                       + b"\xbe\xde" + (len(elements) // 4).to_bytes(2, "big") + elements
                       + payload)
    return out


def srtp_session() -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(key=os.urandom(44), ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                              srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM)
    return pylibsrtp.Session(policy)


async def wire_outlet(sink: tuple[str, int]) -> SrtpWire:
    """An SrtpWire sending through a uvloop UDP transport to ``sink``."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                       local_addr=("127.0.0.1", 0))
    pair = SimpleNamespace(remote_candidate=SimpleNamespace(host=sink[0], port=sink[1]),
                           protocol=SimpleNamespace(transport=transport))
    connection = SimpleNamespace(_nominated={1: pair}, data_received=lambda data, c: None)
    dtls = SimpleNamespace(transport=SimpleNamespace(_connection=connection),
                           _state=DtlsState.CONNECTED, _tx_srtp=srtp_session(), _rx_srtp=None,
                           _get_stats=lambda: None)
    return SrtpWire(cast(Any, dtls), lambda data, arrival: None)


async def run(args: argparse.Namespace) -> None:
    clip = encode_clip()
    layers = 3 if args.simulcast else 1
    streams = [packetize(clip, 0x1000 + i, 1000 * i, RIDS[i] if layers > 1 else None,
                         args.loops * (args.rounds + 1)) for i in range(layers)]
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    stats = ForwardingStats()
    uplink = TrackUplink("video", Nothing(), 0xAAAA, stats, keyframe_interval=0.5)
    uplink.set_codecs({96: VP8, 97: VP8_RTX})
    demux = Demuxer()
    demux.mid_id, demux.rid_id = MID_ID, RID_ID
    demux.add_track("0", uplink)
    if layers > 1:
        uplink.set_rids(RIDS)
    else:
        demux.bind(uplink, 0, 0x1000)
    downtracks: list[Downtrack] = []
    for i in range(args.subscribers):
        outlet = Nothing() if args.outlet == "null" else await wire_outlet(sink.getsockname())
        downtrack = Downtrack(uplink, outlet, cast(Any, Sender(0x5000 + 2 * i)), stats)
        downtrack.configure(payload_map(uplink.codecs, SUBSCRIBER_CODECS),
                            ExtensionWriter(MID_ID, str(i % 7), ABS_ID))
        if downtrack.layers is not None and layers > 1:
            downtrack.layers.set_ceiling(i % layers)
        downtrack.start()
        downtracks.append(downtrack)
    # interleave the layers frame by frame, as a browser sends them
    order: list[bytes] = []
    for packets in zip(*streams, strict=False):
        order += packets
    rounds: list[float] = []
    each = len(order) // (args.rounds + 1)
    for number in range(args.rounds + 1):
        forwarded = stats.packets_forwarded
        started = time.process_time()
        for data in order[number * each:(number + 1) * each]:
            demux(data, int(time.time() * 1000))
        took = time.process_time() - started
        copies = stats.packets_forwarded - forwarded
        rounds.append(took / max(1, copies) * 1e6)
        await asyncio.sleep(0)
    rounds = rounds[1:]  # the first round opens the gates and warms up
    print(f"{args.outlet} outlet, {args.subscribers} subscribers, "
          f"{'simulcast (3 layers)' if layers > 1 else 'one layer'}: "
          f"{min(rounds):.2f} µs per copy (median {statistics.median(rounds):.2f}, "
          f"rounds {' '.join(f'{r:.2f}' for r in rounds)}); load {os.getloadavg()[0]:.2f}",
          flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=64)
    parser.add_argument("--outlet", choices=("null", "wire"), default="wire")
    parser.add_argument("--simulcast", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loops", type=int, default=3, help="passes over the 2 s clip per round")
    uvloop.run(run(parser.parse_args()))
