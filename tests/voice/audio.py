"""Audio helpers for the media tests: a tone track to send and a frequency estimate."""

from __future__ import annotations

import array
import fractions
import math
from typing import Any

import av
from aiortc import AudioStreamTrack, MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

RATE = 48000
SAMPLES = 960


class ToneTrack(MediaStreamTrack):
    """A stereo sine tone at ``freq`` Hz, paced in real time like a microphone.

    The pacing is aiortc's own: each frame waits for the next 20 ms tick of an
    :class:`AudioStreamTrack` (the library's real-time silence source), so the tone
    keeps no clock of its own.
    """

    kind = "audio"

    def __init__(self, freq: float, amplitude: float = 0.5) -> None:
        super().__init__()
        self.freq = freq
        self._amp = int(32767 * amplitude)
        self._pts = 0
        self._clock = AudioStreamTrack()
        # the tone repeats every ``_period`` frames (when freq * 20 ms is a fraction with
        # a small denominator, as for every whole-Hz tone): each phase is computed once
        # (generating samples in Python cost more than the SFU itself in an 8-person call)
        phase = fractions.Fraction(freq).limit_denominator(1000) * SAMPLES / RATE
        self._period = phase.denominator if phase.denominator <= 64 else 0
        self._frames: dict[int, bytes] = {}

    def stop(self) -> None:
        self._clock.stop()
        super().stop()

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        await self._clock.recv()  # the next 20 ms tick
        frame = av.AudioFrame(format="s16", layout="stereo", samples=SAMPLES)
        frame.planes[0].update(self.samples(self._pts))
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += SAMPLES
        return frame

    def samples(self, start: int) -> bytes:
        """The tone's :data:`SAMPLES` stereo s16 samples from sample ``start`` on."""
        key = (start // SAMPLES) % self._period if self._period and not start % SAMPLES else -1
        data = self._frames.get(key)
        if data is None:
            data = self._compute(start)
            if key >= 0:
                self._frames[key] = data
        return data

    def _compute(self, start: int) -> bytes:
        step = 2 * math.pi * self.freq / RATE
        samples = array.array("h")
        for i in range(start, start + SAMPLES):
            v = int(self._amp * math.sin(step * i))
            samples.append(v)
            samples.append(v)
        return samples.tobytes()


def mono_samples(frame: Any) -> list[float]:
    """The first channel of an audio frame as floats in [-1, 1]."""
    fmt = frame.format.name
    channels = len(frame.layout.channels)
    if fmt == "s16":
        data = array.array("h", bytes(frame.planes[0]))
        return [v / 32768 for v in data[::channels]]
    if fmt == "fltp":
        data_f = array.array("f", bytes(frame.planes[0]))
        return list(data_f[: frame.samples])
    if fmt == "s16p":
        data = array.array("h", bytes(frame.planes[0]))
        return [v / 32768 for v in data[: frame.samples]]
    if fmt == "flt":
        data_f = array.array("f", bytes(frame.planes[0]))
        return list(data_f[::channels])
    raise AssertionError(f"unexpected sample format {fmt}")


def goertzel_power(samples: list[float], rate: int, freq: float) -> float:
    """Signal power at ``freq`` (Goertzel)."""
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def dominant_frequency(samples: list[float], rate: int, low: int = 100, high: int = 4000,
                       step: int = 10) -> float:
    """The frequency with the most power between ``low`` and ``high`` Hz."""
    best, best_power = 0.0, -1.0
    for freq in range(low, high + 1, step):
        power = goertzel_power(samples, rate, freq)
        if power > best_power:
            best, best_power = float(freq), power
    return best
