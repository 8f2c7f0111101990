"""Real encoded media as RTP for the recording tests, and a probe of the files written.

Video and audio come from aiortc's own encoders and packetizers (``Vp8Encoder``,
``H264Encoder``, ``OpusEncoder``: their ``encode()`` returns real RTP payloads).
aiortc has no VP9, so VP9 comes from PyAV's libvpx-vp9 with a packetizer written
here to RFC 9628. A sender keeps what it sent (each frame's reference bytes, as
aiortc's own depayloaders rebuild them) so a test can say exactly which frames a
file must hold, and it honours key frame requests the way a real sender does
(the next picture is a key frame). A :class:`Network` loses and reorders
packets deterministically; a :class:`Session` plays senders on a fake clock.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import av.logging
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.rtp import RtpPacket

VIDEO_RATE = 90000
_PATTERN = bytes(range(256)) * 2


class FakeClock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Sent:
    """One frame as sent: its RTP timestamp, key frame flag, reference bytes and packets."""

    index: int
    timestamp: int
    keyframe: bool
    frame: bytes
    packets: list[RtpPacket]


def picture(index: int, width: int, height: int) -> av.VideoFrame:
    """A moving gradient: cheap to make, and its delta frames are small, like a camera's."""
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane_index, plane in enumerate(frame.planes):
        shift = (index * (3 + plane_index)) % 256
        row = _PATTERN[shift:shift + 256]
        plane.update((row * (plane.buffer_size // 256 + 1))[:plane.buffer_size])
    return frame


class _Rtp:
    """Sequence numbers and timestamps of one SSRC, starting near their wrap-around."""

    def __init__(self, ssrc: int, first_seq: int, first_ts: int, payload_type: int) -> None:
        self.ssrc = ssrc
        self.seq = first_seq
        self.ts0 = first_ts
        self.payload_type = payload_type

    def packets(self, payloads: list[bytes], timestamp: int, marker_last: bool = True
                ) -> list[RtpPacket]:
        out = []
        for i, payload in enumerate(payloads):
            out.append(RtpPacket(payload_type=self.payload_type, sequence_number=self.seq,
                                 timestamp=timestamp, ssrc=self.ssrc, payload=payload,
                                 marker=int(marker_last and i == len(payloads) - 1)))
            self.seq = (self.seq + 1) & 0xFFFF
        return out


class VideoSender:
    """An RTP video sender: ``VP8`` or ``H264`` through aiortc, ``VP9`` through PyAV."""

    def __init__(self, codec: str, *, width: int = 160, height: int = 96, fps: int = 30,
                 ssrc: int = 0x1234, first_seq: int = 65500,
                 first_ts: int = (1 << 32) - 90000) -> None:
        self.codec = codec
        self.mime_type = f"video/{codec}"
        self.width, self.height, self.fps = width, height, fps
        self.period = 1 / fps
        self.kind = "video"
        self._rtp = _Rtp(ssrc, first_seq, first_ts, 96)
        self._encoder: Any = {"VP8": Vp8Encoder, "H264": H264Encoder}.get(codec, _Vp9Encoder)()
        self._index = 0
        self.keyframe_wanted = False
        self.sent: list[Sent] = []

    def padding(self, timestamp: int) -> RtpPacket:
        """A padding-only packet on the media SSRC (what a sender probes bandwidth with):
        it takes a sequence number and carries no payload."""
        packet = self._rtp.packets([b""], timestamp, marker_last=False)[0]
        packet.padding_size = 200
        return packet

    def rtx(self, packet: RtpPacket) -> RtpPacket:
        """An RFC 4588 retransmission of ``packet`` on the RTX SSRC and payload type."""
        self._rtx_seq = (getattr(self, "_rtx_seq", 0) + 1) & 0xFFFF
        return RtpPacket(payload_type=97, sequence_number=self._rtx_seq,
                         timestamp=packet.timestamp, ssrc=self._rtp.ssrc + 1,
                         payload=packet.sequence_number.to_bytes(2, "big") + packet.payload,
                         marker=packet.marker)

    def restart(self, ssrc: int, first_seq: int, first_ts: int) -> None:
        """A new SSRC, sequence and timestamp origin (the sender restarted)."""
        self._rtp = _Rtp(ssrc, first_seq, first_ts, 96)
        self.keyframe_wanted = True

    def next(self) -> Sent:
        """Encode the next picture (a key frame when one was asked for) as RTP packets."""
        index = self._index
        self._index += 1
        frame = picture(index, self.width, self.height)
        frame.pts = index * (VIDEO_RATE // self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_RATE)
        force, self.keyframe_wanted = self.keyframe_wanted, False
        payloads, rel_ts = self._encoder.encode(frame, force_keyframe=force)
        timestamp = (self._rtp.ts0 + rel_ts) & 0xFFFFFFFF
        reference = self._reference(payloads)
        sent = Sent(index, timestamp, self._is_key(reference, payloads), reference,
                    self._rtp.packets(payloads, timestamp))
        self.sent.append(sent)
        return sent

    def _reference(self, payloads: list[bytes]) -> bytes:
        if self.codec == "VP8":
            return b"".join(vp8_depayload(p) for p in payloads)
        if self.codec == "H264":
            return b"".join(h264_depayload(p) for p in payloads)
        return b"".join(_vp9_depayload(p) for p in payloads)

    def _is_key(self, reference: bytes, payloads: list[bytes]) -> bool:
        if self.codec == "VP8":
            return not reference[0] & 1
        if self.codec == "H264":
            return any(unit[0] & 0x1F == 5 for unit in nal_units_annex_b(reference))
        return not payloads[0][0] & 0x40


class _Vp9Encoder:
    """libvpx-vp9 in real-time mode, with ``encode()`` shaped like aiortc's encoders."""

    def __init__(self) -> None:
        self._codec: Any = None
        self._picture_id = 1000

    def encode(self, frame: av.VideoFrame, force_keyframe: bool = False
               ) -> tuple[list[bytes], int]:
        if self._codec is None:
            codec: Any = av.CodecContext.create("libvpx-vp9", "w")
            codec.width, codec.height = frame.width, frame.height
            codec.pix_fmt = "yuv420p"
            codec.time_base = fractions.Fraction(1, VIDEO_RATE)
            codec.bit_rate = 300_000
            codec.gop_size = 3000
            codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
            self._codec = codec
        if force_keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        data = b"".join(bytes(p) for p in self._codec.encode(frame))
        self._picture_id = (self._picture_id + 1) & 0x7FFF
        key = (data[0] & 0x04) == 0  # VP9 uncompressed header: frame_type bit (profile 0)
        return vp9_packetize(data, self._picture_id, key, (frame.width, frame.height)), int(
            frame.pts or 0)


def vp9_packetize(data: bytes, picture_id: int, keyframe: bool, size: tuple[int, int],
                  spatial: int | None = None, mtu: int = 1200) -> list[bytes]:
    """RFC 9628 payloads of one VP9 frame (non-flexible mode; SS on key frames)."""
    chunks = [data[i:i + mtu] for i in range(0, len(data), mtu)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        first = 0x80  # I
        if not keyframe:
            first |= 0x40  # P
        if spatial is not None:
            first |= 0x20  # L
        if i == 0:
            first |= 0x08  # B
        if i == len(chunks) - 1:
            first |= 0x04  # E
        ss = keyframe and i == 0 and not spatial
        if ss:
            first |= 0x02  # V
        header = bytes([first]) + struct.pack("!H", 0x8000 | picture_id)
        if spatial is not None:
            header += bytes([spatial << 1, 0])  # TID/U/SID/D, then TL0PICIDX
        if ss:
            header += bytes([0x10]) + struct.pack("!HH", *size)  # N_S=0, Y=1, G=0
        out.append(header + chunk)
    return out


def _vp9_depayload(payload: bytes) -> bytes:
    first = payload[0]
    offset = 1 + (2 if first & 0x80 else 0)
    if first & 0x20:
        offset += 2
    if first & 0x02:
        offset += 1 + 4
    return payload[offset:]


class AudioSender:
    """aiortc's Opus encoder fed a tone, 20 ms per packet."""

    def __init__(self, *, freq: float = 440.0, ssrc: int = 0x5678, first_seq: int = 65000,
                 first_ts: int = (1 << 32) - 48000 * 3) -> None:
        self.mime_type = "audio/opus"
        self.kind = "audio"
        self.period = 0.02
        self.freq = freq
        self._rtp = _Rtp(ssrc, first_seq, first_ts, 111)
        self._encoder = OpusEncoder()
        self._index = 0
        self.keyframe_wanted = False
        self.sent: list[Sent] = []

    def next(self) -> Sent:
        index = self._index
        self._index += 1
        samples = bytearray()
        step = 2 * math.pi * self.freq / 48000
        for n in range(index * 960, index * 960 + 960):
            value = int(12000 * math.sin(step * n))
            samples += struct.pack("<hh", value, value)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes(samples))
        frame.sample_rate = 48000
        frame.pts = index * 960
        frame.time_base = fractions.Fraction(1, 48000)
        payloads, rel_ts = self._encoder.encode(frame)
        timestamp = (self._rtp.ts0 + rel_ts) & 0xFFFFFFFF
        sent = Sent(index, timestamp, True, payloads[0],
                    self._rtp.packets(payloads, timestamp, marker_last=False))
        self.sent.append(sent)
        return sent


Sender = VideoSender | AudioSender


class Feed:
    """A packet source as the SFU's Uplink is one: listeners, and key frame requests that
    reach the sender."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.listeners: dict[int, Callable[[RtpPacket], None]] = {}
        self.requests = 0
        self.requested_at: list[int] = []  # how many frames were sent at each request

    def listen(self, key: int, listener: Callable[[RtpPacket], None]) -> None:
        self.listeners[key] = listener

    def unlisten(self, key: int) -> None:
        self.listeners.pop(key, None)

    async def request_keyframe(self) -> None:
        self.requests += 1
        self.requested_at.append(len(self.sender.sent))
        self.sender.keyframe_wanted = True

    def deliver(self, packet: RtpPacket) -> None:
        for listener in tuple(self.listeners.values()):
            listener(packet)


@dataclass
class Network:
    """Loses the packets ``lose`` names ((frame index, packet index)) and reverses every
    run of ``reorder`` packets (a deterministic worst case within that window)."""

    lose: Callable[[Sent, int], bool] = lambda sent, i: False
    reorder: int = 1
    delivered: set[tuple[int, int]] = field(default_factory=set)
    _pending: list[tuple[tuple[int, int], RtpPacket]] = field(default_factory=list)

    def carry(self, sent: Sent) -> list[RtpPacket]:
        out: list[RtpPacket] = []
        for i, packet in enumerate(sent.packets):
            if self.lose(sent, i):
                continue
            self._pending.append(((sent.index, i), packet))
            if len(self._pending) >= self.reorder:
                out.extend(self._release())
        return out

    def _release(self) -> list[RtpPacket]:
        pending, self._pending = self._pending, []
        for key, _ in pending:
            self.delivered.add(key)
        return [packet for _, packet in reversed(pending)]

    def drain(self) -> list[RtpPacket]:
        return self._release()

    def whole(self, sent: Sent) -> bool:
        """Every packet of ``sent`` got through."""
        return all((sent.index, i) in self.delivered for i in range(len(sent.packets)))


def expected_frames(sender: Sender, network: Network, video: bool,
                    first: int = 0, last: int | None = None) -> list[Sent]:
    """The frames a recording must keep: whole ones, and for video only from a key frame
    after any loss."""
    kept: list[Sent] = []
    waiting = video
    for sent in sender.sent[first:last]:
        if not network.whole(sent):
            waiting = video
            continue
        if waiting and not sent.keyframe:
            continue
        waiting = False
        kept.append(sent)
    return kept


class Stream:
    """A sender on a schedule (seconds into the session), through a network, into a feed."""

    def __init__(self, sender: Sender, network: Network | None = None, start: float = 0.0,
                 stop: float | None = None) -> None:
        self.sender = sender
        self.network = network if network is not None else Network()
        self.feed = Feed(sender)
        self.start = start
        self.stop = stop
        self.next_at = start


@dataclass
class Probe:
    """A written file as PyAV reads it back."""

    codec: str
    width: int
    height: int
    packets: list[bytes]
    pts: list[int]  # milliseconds
    keyframes: list[bool]
    decoded: int
    decoded_pts: list[float]  # seconds
    sizes: list[tuple[int, int]]  # of the decoded pictures
    samples: int
    errors: list[str]
    duration: float  # seconds, as the container says


def probe(path: Path) -> Probe:
    """Demux and decode ``path``; libav errors and exceptions end up in ``errors``."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    errors: list[str] = []
    try:
        with av.logging.Capture() as logs, av.open(str(path)) as container:
            stream = container.streams[0]
            codec: Any = stream.codec_context
            packets, pts, keys, decoded_pts, sizes = [], [], [], [], []
            decoded = samples = 0
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                packets.append(bytes(packet))
                pts.append(int((packet.pts or 0) * packet.time_base * 1000))
                keys.append(packet.is_keyframe)
                try:
                    for frame in codec.decode(packet):
                        decoded += 1
                        decoded_pts.append(float(frame.pts * frame.time_base))
                        samples += getattr(frame, "samples", 0)
                        if stream.type == "video":
                            sizes.append((frame.width, frame.height))
                except av.error.FFmpegError as exc:
                    errors.append(f"decode: {exc}")
            result = Probe(codec.name, codec.width if stream.type == "video" else 0,
                           codec.height if stream.type == "video" else 0, packets, pts, keys,
                           decoded, decoded_pts, sizes, samples, errors,
                           float(container.duration or 0) / 1_000_000)
        errors.extend(f"libav: {message.strip()}" for level, _, message in logs
                      if level <= av.logging.ERROR)
    finally:
        av.logging.set_level(previous)
    return result


def nal_units_annex_b(data: bytes) -> list[bytes]:
    """NAL units of an Annex B byte string."""
    units = []
    for part in data.split(b"\x00\x00\x01"):
        unit = part.rstrip(b"\x00")
        if unit:
            units.append(unit)
    return units


def nal_units_avcc(data: bytes) -> list[bytes]:
    """NAL units of a length-prefixed (Matroska/MP4) H.264 sample."""
    units, at = [], 0
    while at + 4 <= len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        units.append(data[at + 4:at + 4 + size])
        at += 4 + size
    return units


def same_frame(codec: str, written: bytes, reference: bytes) -> bool:
    """A file's packet holds exactly the sender's frame (H.264 changes only its framing)."""
    if codec == "H264":
        return nal_units_avcc(written) == nal_units_annex_b(reference)
    return written == reference


def rng(seed: int) -> random.Random:
    """A seeded random source for loss patterns."""
    return random.Random(seed)


class Session:
    """Plays streams on a fake clock, in time order, into their feeds."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.t0 = clock.now
        self.streams: list[Stream] = []

    def add(self, stream: Stream) -> Stream:
        self.streams.append(stream)
        return stream

    async def run_until(self, t: float) -> None:
        """Send every frame due before ``t`` seconds after the session began."""
        while True:
            live = [s for s in self.streams if s.stop is None or s.next_at < s.stop - 1e-9]
            due = min(live, key=lambda s: s.next_at, default=None)
            if due is None or due.next_at > t - 1e-9:
                break
            self.clock.now = self.t0 + due.next_at
            sent = due.sender.next()
            for packet in due.network.carry(sent):
                due.feed.deliver(packet)
            due.next_at += due.sender.period
            await asyncio.sleep(0)  # lets a key frame request reach its sender
        self.clock.now = self.t0 + t

    def drain(self) -> None:
        """Deliver what the networks still hold back."""
        for stream in self.streams:
            for packet in stream.network.drain():
                stream.feed.deliver(packet)
