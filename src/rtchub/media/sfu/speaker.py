"""Who is speaking, from the audio levels publishers put in their packets (RFC 6464).

A level is -dBov: 0 is the loudest, 127 silence. :func:`loudness` turns the
levels of the last ``window`` seconds into a mean linear amplitude;
:func:`choose_speaker` picks the loudest track above ``threshold``, keeping the
current speaker unless another is clearly louder (``margin``), so two people
talking at once do not make the choice flicker. :class:`ActiveSpeakerDetector`
keeps the recent levels per track and calls back when the choice changes; it
re-decides at most every ``interval`` seconds as levels arrive, so it needs no
timer of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["ActiveSpeakerDetector", "SpeakerPolicy", "choose_speaker", "loudness"]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class SpeakerPolicy:
    """Tuning of the active-speaker choice."""

    window: float = 1.0  # seconds of levels that count
    threshold_dbov: int = 50  # quieter than -50 dBov on average is not speech
    margin: float = 2.0  # a challenger needs this many times the current's amplitude
    interval: float = 0.3  # decide at most this often

    def __post_init__(self) -> None:
        if self.window <= 0 or self.interval <= 0 or self.margin < 1:
            raise ValueError(f"a speaker policy needs positive window and interval and "
                             f"margin >= 1, got {self}")
        if not 0 <= self.threshold_dbov <= 127:
            raise ValueError(f"threshold must be 0-127 dBov, got {self.threshold_dbov}")


def _amplitude(level: int) -> float:
    return float(10 ** (-level / 20))


def loudness(levels: Iterable[int]) -> float:
    """Mean linear amplitude (1.0 = 0 dBov) of some RFC 6464 levels; 0 for none."""
    values = [_amplitude(level) for level in levels]
    return sum(values) / len(values) if values else 0.0


def choose_speaker(loudness_of: Mapping[K, float], current: K | None,
                   policy: SpeakerPolicy) -> K | None:
    """The active speaker: the loudest track above the threshold, with hysteresis."""
    floor = _amplitude(policy.threshold_dbov)
    loud = {key: value for key, value in loudness_of.items() if value >= floor}
    if not loud:
        return None
    best = max(loud, key=lambda key: loud[key])
    if current in loud and current != best and loud[best] < loud[current] * policy.margin:
        return current
    return best


class ActiveSpeakerDetector(Generic[K]):
    """Recent levels per audio track; ``on_change(speaker or None)`` when the choice moves."""

    def __init__(self, on_change: Callable[[K | None], None],
                 policy: SpeakerPolicy | None = None) -> None:
        self._policy = policy or SpeakerPolicy()
        self._on_change = on_change
        self._levels: dict[K, deque[tuple[float, int]]] = {}
        self._decided: float | None = None
        self.speaker: K | None = None

    def observe(self, key: K, level: int, now: float) -> None:
        """Note that track ``key`` had ``level`` at ``now``; maybe decide again."""
        recent = self._levels.get(key)
        if recent is None:
            recent = self._levels[key] = deque()
        recent.append((now, level))
        if self._decided is None or now - self._decided >= self._policy.interval:
            self.decide(now)

    def forget(self, key: K, now: float) -> None:
        """A track ended: drop its levels and decide again."""
        if self._levels.pop(key, None) is not None:
            self.decide(now)

    def decide(self, now: float) -> K | None:
        """Choose the speaker from the levels of the last window; call back on a change."""
        self._decided = now
        horizon = now - self._policy.window
        loud: dict[K, float] = {}
        for key, recent in self._levels.items():
            while recent and recent[0][0] < horizon:
                recent.popleft()
            loud[key] = loudness(level for _, level in recent)
        speaker = choose_speaker(loud, self.speaker, self._policy)
        if speaker != self.speaker:
            self.speaker = speaker
            self._on_change(speaker)
        return speaker
