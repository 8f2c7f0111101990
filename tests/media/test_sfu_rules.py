"""The SFU's pure decisions: REMB combination, upstream loss, the active speaker."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtchub.media.sfu.loss import DropEvery, MissingTracker
from rtchub.media.sfu.remb import BitrateEstimates, publisher_budget
from rtchub.media.sfu.speaker import (
    ActiveSpeakerDetector,
    SpeakerPolicy,
    choose_speaker,
    loudness,
)


def test_a_publisher_is_allowed_the_least_fresh_estimate_within_the_bounds() -> None:
    estimates: BitrateEstimates[str] = BitrateEstimates()
    assert estimates.target(0.0, 100_000, 2_500_000, 5.0) == 2_500_000  # nobody: the cap
    estimates.update("a", 900_000, now=1.0)
    estimates.update("b", 600_000, now=2.0)
    assert estimates.target(3.0, 100_000, 2_500_000, 5.0) == 600_000
    assert estimates.target(3.0, 100_000, 500_000, 5.0) == 500_000  # capped
    estimates.update("b", 20_000, now=3.0)
    assert estimates.target(3.0, 100_000, 2_500_000, 5.0) == 100_000  # floored
    assert estimates.target(6.5, 100_000, 2_500_000, 5.0) == 100_000  # a is stale, b is not
    assert estimates.target(8.5, 100_000, 2_500_000, 5.0) == 2_500_000  # both stale
    estimates.remove("b")
    estimates.update("a", 700_000, now=9.0)
    assert estimates.target(9.0, 100_000, 2_500_000, 5.0) == 700_000
    assert publisher_budget([700_000, 300_000]) == 1_000_000


def test_gaps_upstream_are_named_once_and_filled_by_late_packets() -> None:
    tracker = MissingTracker(horizon=20, max_gap=10)
    assert tracker.add(65533) == []
    assert tracker.add(65534) == []
    assert tracker.add(1) == [65535, 0]  # across the wrap
    assert tracker.add(0) == []  # late: fills a gap
    assert tracker.missing == {65535}
    assert tracker.add(1) == []  # a duplicate
    assert tracker.add(40) == []  # a jump beyond max_gap is a restart, not loss
    assert tracker.missing == set()
    assert tracker.add(45) == [41, 42, 43, 44]


@given(st.lists(st.integers(0, 3), min_size=1, max_size=200))
def test_missing_stays_bounded(steps: list[int]) -> None:
    tracker = MissingTracker(horizon=16, max_gap=8)
    seq = 0
    for step in steps:
        seq = (seq + step) % 65536
        tracker.add(seq)
        assert len(tracker.missing) <= 16 + 8


def test_drop_every_nth() -> None:
    drops = DropEvery(3)
    assert [drops.drop() for _ in range(7)] == [False, False, True, False, False, True, False]
    assert drops.dropped == 2
    with pytest.raises(ValueError):
        DropEvery(1)


def test_loudness_and_the_speaker_choice() -> None:
    assert loudness([]) == 0.0
    assert loudness([0, 0]) == 1.0
    assert loudness([20]) == pytest.approx(0.1)
    policy = SpeakerPolicy(threshold_dbov=50, margin=2.0)
    quiet = 10 ** (-60 / 20)
    assert choose_speaker({"a": quiet, "b": quiet}, None, policy) is None
    assert choose_speaker({"a": 0.1, "b": 0.05}, None, policy) == "a"
    # the current speaker stays unless someone is clearly louder
    assert choose_speaker({"a": 0.1, "b": 0.15}, "a", policy) == "a"
    assert choose_speaker({"a": 0.1, "b": 0.25}, "a", policy) == "b"
    assert choose_speaker({"a": quiet, "b": 0.01}, "a", policy) == "b"
    with pytest.raises(ValueError):
        SpeakerPolicy(margin=0.5)


def test_the_detector_calls_back_when_the_speaker_changes() -> None:
    changes: list[str | None] = []
    detector: ActiveSpeakerDetector[str] = ActiveSpeakerDetector(
        changes.append, SpeakerPolicy(window=0.5, interval=0.1))
    now = 0.0
    for _ in range(30):  # a talks, b is silent
        now += 0.02
        detector.observe("a", 20, now)
        detector.observe("b", 127, now)
    assert changes == ["a"]
    for _ in range(50):  # b takes over
        now += 0.02
        detector.observe("a", 127, now)
        detector.observe("b", 15, now)
    assert changes == ["a", "b"]
    detector.forget("b", now)
    assert changes == ["a", "b", None]
    assert detector.speaker is None
