"""MP3 for plain HTTP listeners: one Opus decode and one MP3 encode per stream.

:class:`Mp3Broadcast` listens to a stream's uplink only while it has HTTP
listeners. Each RTP packet's Opus payload is decoded once, resampled from
aiortc's 48 kHz to 44.1 kHz planar float in 1152-sample frames, and encoded
once with libmp3lame (128 kbps stereo); every listener reads the same bytes
through its own bounded queue, and a listener that falls behind is dropped
rather than slowing anyone else.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Final

import av
from aiortc.rtp import RtpPacket

from rtchub.media.fanout import Uplink

__all__ = ["Mp3Broadcast", "Mp3Encoder", "Mp3Listener"]

log = logging.getLogger("rtchub.media")

MP3_RATE: Final = 44100
MP3_FRAME: Final = 1152
# MP3 goes to listeners in chunks of about 100 ms (four 26 ms frames at 128 kbps): one
# write per listener per chunk keeps a hundred listeners cheap; players buffer far more.
FLUSH_BYTES: Final = 1600
SEQ_HALF: Final = 1 << 15


class Mp3Encoder:
    """Opus packets in, MP3 bytes out (bare MP3 frames, no container)."""

    def __init__(self, bitrate: int = 128_000) -> None:
        self._decoder: Any = av.CodecContext.create("libopus", "r")
        self._decoder.sample_rate = 48000
        self._decoder.layout = "stereo"
        self._resampler: Any = av.AudioResampler(format="fltp", layout="stereo", rate=MP3_RATE,
                                                 frame_size=MP3_FRAME)
        self._encoder: Any = av.CodecContext.create("libmp3lame", "w")
        self._encoder.bit_rate = bitrate
        self._encoder.sample_rate = MP3_RATE
        self._encoder.layout = "stereo"
        self._encoder.format = "fltp"
        self._last_seq: int | None = None

    def feed(self, packet: RtpPacket) -> bytes:
        """Decode one Opus RTP packet; return whatever MP3 bytes are ready (maybe none)."""
        seq = packet.sequence_number
        last = self._last_seq
        if last is not None and ((seq - last) % 65536) >= SEQ_HALF:
            return b""  # a late or duplicate packet: its time has passed
        self._last_seq = seq
        if not packet.payload:
            return b""
        out = bytearray()
        for frame in self._decoder.decode(av.Packet(packet.payload)):
            for resampled in self._resampler.resample(frame):
                for encoded in self._encoder.encode(resampled):
                    out += bytes(encoded)
        return bytes(out)


class Mp3Listener:
    """One HTTP listener's bounded queue of MP3 chunks; ``None`` marks the end."""

    __slots__ = ("_chunks", "_limit", "_wakeup", "dropped", "ended")

    def __init__(self, limit: int) -> None:
        self._chunks: deque[bytes] = deque()
        self._limit = limit
        self._wakeup: asyncio.Event = asyncio.Event()
        self.ended = False
        self.dropped = False

    def offer(self, chunk: bytes) -> bool:
        """Queue ``chunk``; False (and the listener ends) when the queue is full."""
        if self.ended:
            return False
        if len(self._chunks) >= self._limit:
            self.dropped = True
            self.end()
            return False
        self._chunks.append(chunk)
        self._wakeup.set()
        return True

    def end(self) -> None:
        """No more chunks will come."""
        self.ended = True
        self._wakeup.set()

    async def read(self) -> bytes | None:
        """The next chunk, or None once the stream ended (or this listener was dropped)."""
        while not self._chunks:
            if self.ended:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.dropped:
            self._chunks.clear()
            return None
        return self._chunks.popleft()


class Mp3Broadcast:
    """A stream's MP3 output: encodes only while someone listens."""

    def __init__(self, uplink: Uplink, bitrate: int, queue_limit: int) -> None:
        self._uplink = uplink
        self._bitrate = bitrate
        self._queue_limit = queue_limit
        self._listeners: set[Mp3Listener] = set()
        self._encoder: Mp3Encoder | None = None
        self._pending = bytearray()
        self.bytes_out = 0
        self.dropped = 0
        self.ended = False

    @property
    def listeners(self) -> int:
        """HTTP listeners now."""
        return len(self._listeners)

    @property
    def encoding(self) -> bool:
        """True while the encoder runs (there is at least one listener)."""
        return self._encoder is not None

    def subscribe(self) -> Mp3Listener:
        """A new listener; starts the encoder if it is the first."""
        listener = Mp3Listener(self._queue_limit)
        if self.ended:
            listener.end()
            return listener
        self._listeners.add(listener)
        if self._encoder is None:
            self._encoder = Mp3Encoder(self._bitrate)
            self._pending.clear()
            self._uplink.listen(id(self), self._on_packet)
        return listener

    def unsubscribe(self, listener: Mp3Listener) -> None:
        """Remove a listener; stops the encoder after the last."""
        self._listeners.discard(listener)
        listener.end()
        if not self._listeners and self._encoder is not None:
            self._uplink.unlisten(id(self))
            self._encoder = None

    def end(self) -> None:
        """The stream ended: every listener gets the end of its response."""
        self.ended = True
        for listener in list(self._listeners):
            self.unsubscribe(listener)

    def _on_packet(self, packet: RtpPacket) -> None:
        encoder = self._encoder
        if encoder is None:
            return
        pending = self._pending
        pending += encoder.feed(packet)
        if len(pending) < FLUSH_BYTES:
            return
        chunk = bytes(pending)
        pending.clear()
        self.bytes_out += len(chunk)
        for listener in tuple(self._listeners):
            if not listener.offer(chunk):
                self.dropped += 1
                log.info("dropping a slow MP3 listener")
                self.unsubscribe(listener)
