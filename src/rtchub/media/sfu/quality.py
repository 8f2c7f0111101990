"""One participant's link as the SFU sees it, measured interval by interval.

A :class:`PeerMeter` watches one :class:`~.peer.SfuPeer` and, each time it is
asked (:meth:`PeerMeter.sample`, every quality interval), says what happened on
the participant's connection since the previous sample:

- **What the participant sends** (the server's receive side, per layer of each
  published track, from the same per-SSRC statistics aiortc's receiver reports are
  built from): loss as the share of expected packets that never came (gaps in the
  sequence numbers, retransmissions not counted), and RFC 3550 interarrival jitter.
- **What the participant receives** (the server's sends, from the receiver report
  blocks the participant's client sends about each stream it gets, see
  :mod:`rtchub.media.aiortc_adapter.reports`): loss from the growth of the
  cumulative loss over the growth of the extended highest sequence number between
  two reports (the block's own fraction lost for a stream's first report), the jitter
  the client reports, and the round-trip time from each block that echoes the
  server's last sender report (LSR/DLSR).
- **Bitrates** both ways from the bytes on the SFU's packet path.

Several streams are folded into one figure: loss over all packets, the worst
jitter, the median round-trip time (a report handled late by a busy event loop reads
as a long round trip; the median is not swayed by one). A figure nothing measured in the interval is
None (a client that receives nothing sends no report blocks); the round-trip
time carries the last one over for :data:`RTT_CARRY` samples.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Final

from rtchub.media import aiortc_adapter as adapter
from rtchub.media.sfu.peer import SfuPeer

__all__ = ["RTT_CARRY", "LinkSample", "PeerMeter"]

RTT_CARRY: Final = 3  # samples a round-trip time is kept when no report echoes an SR
_MAX_RTTS: Final = 64  # round-trip samples kept per interval


@dataclass(frozen=True, slots=True)
class LinkSample:
    """One interval of a participant's connection with the server (see the module doc).

    Loss in percent, jitter and round-trip time in milliseconds, bitrates in kbit/s;
    "send" is what the participant sends to the server, "receive" what it receives.
    """

    send_loss: float | None
    receive_loss: float | None
    send_jitter: float | None
    receive_jitter: float | None
    rtt: float | None
    send_kbps: float
    receive_kbps: float
    video: bool  # video flows on the connection (either way)
    duration: float  # seconds since the previous sample


def _loss(lost: int, expected: int, fractions: list[float]) -> float | None:
    if expected > 0:
        return 100.0 * lost / expected
    return sum(fractions) / len(fractions) if fractions else None


class PeerMeter:
    """Measures one peer's connection per interval (see the module doc)."""

    def __init__(self, peer: SfuPeer, now: float) -> None:
        self.peer = peer
        self._last = now
        self._watched: object | None = None  # the transport whose reports are watched
        self._blocks: dict[int, adapter.ReportBlock] = {}  # latest per SSRC, this interval
        self._reported: dict[int, tuple[int, int]] = {}  # SSRC -> (lost, highest) last used
        self._received: dict[int, tuple[int, int]] = {}  # uplink SSRC -> (received, lost)
        self._rtts: list[float] = []
        self._rtt: float | None = None
        self._rtt_age = 0
        self._bytes = peer.wire_bytes
        self._fractions: dict[int, float] = {}  # SSRC -> % lost in its latest report
        self._last_rtt: float | None = None  # seconds, smoothed over the reports

    def recent(self) -> tuple[float | None, float | None]:
        """What the latest receiver reports say, between samples: the loss (%) the
        client reports over the streams it receives now, and the round-trip time (ms,
        smoothed over the reports: a report handled late, on a busy event loop, reads
        as a long round trip)."""
        ssrcs = {s.downtrack.ssrc for s in self.peer.subscriptions
                 if s.downtrack is not None and s.downtrack.active}
        fractions = [f for ssrc, f in self._fractions.items() if ssrc in ssrcs]
        loss = sum(fractions) / len(fractions) if fractions else None
        return loss, None if self._last_rtt is None else 1000 * self._last_rtt

    def _observe(self, blocks: list[adapter.ReportBlock],
                 infos: list[adapter.SenderInfo]) -> None:
        for block in blocks:
            self._blocks[block.ssrc] = block
            self._fractions[block.ssrc] = 100 * block.fraction_lost / 256
            if block.rtt is not None:
                last = self._last_rtt  # smoothed: one late report must not swing it
                self._last_rtt = block.rtt if last is None else 0.8 * last + 0.2 * block.rtt
                if len(self._rtts) < _MAX_RTTS:
                    self._rtts.append(block.rtt)


    def watch(self) -> bool:
        """Start watching the client's reports once its connection has a transport;
        True when watching (called by :meth:`sample` too)."""
        if self._watched is None and not self.peer.closed:
            self._watched = adapter.watch_reports(self.peer.pc, self._observe)
        return self._watched is not None

    def sample(self, now: float) -> LinkSample:
        """What happened since the previous sample (or since the meter was made)."""
        self.watch()
        duration = max(now - self._last, 1e-6)
        self._last = now
        video_down, receive_loss, receive_jitter = self._downlink()
        video_up, send_loss, send_jitter = self._uplink()
        received, sent = self.peer.wire_bytes
        send_kbps = max(0, received - self._bytes[0]) * 8 / duration / 1000
        receive_kbps = max(0, sent - self._bytes[1]) * 8 / duration / 1000
        self._bytes = (received, sent)
        return LinkSample(send_loss, receive_loss, send_jitter, receive_jitter, self._round_trip(),
                          round(send_kbps, 1), round(receive_kbps, 1), video_down or video_up,
                          duration)

    def _round_trip(self) -> float | None:
        if self._rtts:
            self._rtt = 1000 * statistics.median(self._rtts)
            self._rtt_age = 0
            self._rtts.clear()
        elif self._rtt is not None:
            self._rtt_age += 1
            if self._rtt_age > RTT_CARRY:
                self._rtt = None
        return self._rtt

    def _downlink(self) -> tuple[bool, float | None, float | None]:
        rates: dict[int, int] = {}  # SSRC of each stream sent now -> its clock rate
        video = False
        for subscription in self.peer.subscriptions:
            downtrack = subscription.downtrack
            if downtrack is None or not downtrack.active:
                continue
            rates[downtrack.ssrc] = downtrack.uplink.clock_rate
            video = video or downtrack.kind == "video"
        lost = expected = 0
        fractions: list[float] = []
        jitters: list[float] = []
        for ssrc, rate in rates.items():
            block = self._blocks.get(ssrc)
            if block is None:
                continue
            jitters.append(1000 * block.jitter / rate)
            before = self._reported.get(ssrc)
            self._reported[ssrc] = (block.packets_lost, block.highest_sequence)
            if before is None:
                fractions.append(100 * block.fraction_lost / 256)
                continue
            grown = block.highest_sequence - before[1]
            if grown > 0:
                expected += grown
                lost += min(grown, max(0, block.packets_lost - before[0]))
        self._blocks.clear()
        for gone in [s for s in self._reported if s not in rates]:
            del self._reported[gone]
        for gone in [s for s in self._fractions if s not in rates]:
            del self._fractions[gone]
        return video, _loss(lost, expected, fractions), max(jitters, default=None)

    def _uplink(self) -> tuple[bool, float | None, float | None]:
        lost = expected = 0
        jitters: list[float] = []
        video = False
        seen: set[int] = set()
        for track in self.peer.published.values():
            uplink = track.uplink
            for layer in uplink.layers:
                reception = layer.reception
                if reception is None or layer.ssrc is None:
                    continue
                seen.add(layer.ssrc)
                got, missing = reception.packets_received, reception.packets_lost
                before = self._received.get(layer.ssrc)
                self._received[layer.ssrc] = (got, missing)
                if before is None or got <= before[0]:
                    continue  # nothing new from this layer
                video = video or track.kind == "video"
                jitters.append(1000 * reception.jitter / uplink.clock_rate)
                more_lost = max(0, missing - before[1])
                expected += got - before[0] + more_lost
                lost += more_lost
        for gone in [s for s in self._received if s not in seen]:
            del self._received[gone]
        return video, _loss(lost, expected, []), max(jitters, default=None)
