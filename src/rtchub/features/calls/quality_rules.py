"""Connection quality from a participant's link figures: a 0-100 score and warnings (pure).

Seed 003's quality monitor reports, per peer, ``Score`` (0-100), ``PacketLoss`` (%),
``Jitter`` (ms), ``Latency`` (round-trip time), ``BitrateKbps`` and ``Warnings``;
:class:`ConnectionQuality` is that value in Python naming, with the two directions
kept apart as well. :func:`assess` makes one from the figures of one interval
(anything with the attributes of :class:`LinkFigures`, such as the media plane's
``LinkSample``).

The score (docs/calls.md, "Quality"), from the worse direction's loss ``L`` (%) and
jitter ``J`` (ms), the round-trip time ``R`` (ms) and the total bitrate ``B`` (kbps)::

    score = round(100 - loss - jitter - rtt - bitrate), kept within 0..100
      loss    = min(60, 6 * L)                    5 % costs 30, 10 % or more costs 60
      jitter  = min(20, max(0, J - 10) / 2)       30 ms costs 10, 50 ms or more 20
      rtt     = min(20, max(0, R - 150) / 10)     300 ms costs 15, 350 ms or more 20
      bitrate = min(10, 10 * (1 - B / min))       only while video flows and B < min

A figure that was not measured costs nothing. Warnings name each figure past its
threshold (:class:`QualityThresholds`, configurable; seed 003 warns above 5 % loss).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol

__all__ = ["ConnectionQuality", "LinkFigures", "QualityThresholds", "assess", "grade", "score",
           "warnings"]

MAX_LOSS_PENALTY: Final = 60.0
MAX_JITTER_PENALTY: Final = 20.0
MAX_RTT_PENALTY: Final = 20.0
MAX_BITRATE_PENALTY: Final = 10.0


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """Where a figure earns a warning: loss above ``packet_loss`` %, jitter above
    ``jitter`` ms, round-trip time above ``latency`` ms, and, while video flows, a
    total bitrate below ``min_bitrate_kbps``."""

    packet_loss: float = 5.0
    jitter: float = 30.0
    latency: float = 300.0
    min_bitrate_kbps: float = 100.0

    def __post_init__(self) -> None:
        for name in ("packet_loss", "jitter", "latency", "min_bitrate_kbps"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"quality threshold {name} must be a number >= 0, got "
                                 f"{value!r}")
        if self.packet_loss > 100:
            raise ValueError(f"quality threshold packet_loss is a percentage (0-100), got "
                             f"{self.packet_loss}")


class LinkFigures(Protocol):
    """One interval's figures of a connection (None: not measured)."""

    @property
    def send_loss(self) -> float | None: ...
    @property
    def receive_loss(self) -> float | None: ...
    @property
    def send_jitter(self) -> float | None: ...
    @property
    def receive_jitter(self) -> float | None: ...
    @property
    def rtt(self) -> float | None: ...
    @property
    def send_kbps(self) -> float: ...
    @property
    def receive_kbps(self) -> float: ...
    @property
    def video(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ConnectionQuality:
    """Seed 003's ``ConnectionQuality`` of one participant at ``measured_at`` (Unix s).

    ``packet_loss`` and ``jitter`` are the worse of the two directions (0 when neither
    was measured), ``latency`` the round-trip time in ms (None: unknown yet),
    ``bitrate_kbps`` both directions together; the ``send_*`` / ``receive_*`` fields
    keep the directions apart ("send": what the participant sends the server).
    """

    peer_id: str
    room: str
    score: int
    packet_loss: float
    jitter: float
    latency: float | None
    bitrate_kbps: float
    warnings: tuple[str, ...]
    send_loss: float | None = None
    receive_loss: float | None = None
    send_jitter: float | None = None
    receive_jitter: float | None = None
    send_kbps: float = 0.0
    receive_kbps: float = 0.0
    video: bool = False
    measured_at: float = 0.0

    @property
    def grade(self) -> str:
        """``good``, ``fair`` or ``poor`` (the browser app's badge colours)."""
        return grade(self.score)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready): every field, warnings as a list, and ``grade``."""
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        data["grade"] = self.grade
        return data

    def same_as(self, other: ConnectionQuality | None) -> bool:
        """True when ``other`` reads the same to a person: score, warnings and the
        rounded figures (the monitor reports a change otherwise)."""
        if other is None:
            return False
        return (self.score, self.warnings, round(self.packet_loss, 1), round(self.jitter),
                None if self.latency is None else round(self.latency),
                round(self.bitrate_kbps)) == (
            other.score, other.warnings, round(other.packet_loss, 1), round(other.jitter),
            None if other.latency is None else round(other.latency), round(other.bitrate_kbps))


def _worst(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def score(packet_loss: float | None, jitter: float | None, latency: float | None,
          bitrate_kbps: float, video: bool, min_bitrate_kbps: float) -> int:
    """The 0-100 score of the module doc."""
    penalty = 0.0
    if packet_loss is not None:
        penalty += min(MAX_LOSS_PENALTY, 6 * max(0.0, packet_loss))
    if jitter is not None:
        penalty += min(MAX_JITTER_PENALTY, max(0.0, jitter - 10) / 2)
    if latency is not None:
        penalty += min(MAX_RTT_PENALTY, max(0.0, latency - 150) / 10)
    if video and min_bitrate_kbps > 0 and bitrate_kbps < min_bitrate_kbps:
        penalty += min(MAX_BITRATE_PENALTY,
                       MAX_BITRATE_PENALTY * (1 - max(0.0, bitrate_kbps) / min_bitrate_kbps))
    return max(0, min(100, round(100 - penalty)))


def warnings(packet_loss: float | None, jitter: float | None, latency: float | None,
             bitrate_kbps: float, video: bool, limits: QualityThresholds) -> tuple[str, ...]:
    """One line per figure past its threshold, in a fixed order (loss, jitter, latency,
    bitrate), each starting with what it is about."""
    found: list[str] = []
    if packet_loss is not None and packet_loss > limits.packet_loss:
        found.append(f"high packet loss: {packet_loss:.1f}% (over {limits.packet_loss:g}%)")
    if jitter is not None and jitter > limits.jitter:
        found.append(f"high jitter: {jitter:.0f} ms (over {limits.jitter:g} ms)")
    if latency is not None and latency > limits.latency:
        found.append(f"high latency: {latency:.0f} ms round trip (over {limits.latency:g} ms)")
    if video and bitrate_kbps < limits.min_bitrate_kbps:
        found.append(f"low bitrate: {bitrate_kbps:.0f} kbps (under "
                     f"{limits.min_bitrate_kbps:g} kbps)")
    return tuple(found)


def grade(value: int) -> str:
    """``good`` from 80, ``fair`` from 50, else ``poor``."""
    return "good" if value >= 80 else "fair" if value >= 50 else "poor"


def assess(peer_id: str, room: str, figures: LinkFigures, limits: QualityThresholds,
           measured_at: float) -> ConnectionQuality:
    """The quality of one interval's ``figures`` (see the module doc)."""
    loss = _worst(figures.send_loss, figures.receive_loss)
    jitter = _worst(figures.send_jitter, figures.receive_jitter)
    bitrate = figures.send_kbps + figures.receive_kbps
    return ConnectionQuality(
        peer_id, room,
        score(loss, jitter, figures.rtt, bitrate, figures.video, limits.min_bitrate_kbps),
        round(loss or 0.0, 2), round(jitter or 0.0, 1),
        None if figures.rtt is None else round(figures.rtt, 1), round(bitrate, 1),
        warnings(loss, jitter, figures.rtt, bitrate, figures.video, limits),
        None if figures.send_loss is None else round(figures.send_loss, 2),
        None if figures.receive_loss is None else round(figures.receive_loss, 2),
        None if figures.send_jitter is None else round(figures.send_jitter, 1),
        None if figures.receive_jitter is None else round(figures.receive_jitter, 1),
        figures.send_kbps, figures.receive_kbps, figures.video, measured_at)
