"""The pure stream registry behind seed 002: latest, lookups, errors, limits."""

from __future__ import annotations

import pytest

from rtchub.errors import CapacityError, Conflict, StreamEnded, StreamNotFound
from rtchub.features.voice.rules import Streams, stream_id_for


def test_latest_and_order() -> None:
    streams = Streams(max_streams=3)
    assert streams.latest() is None
    a = streams.go_live("a", when=1.0)
    b = streams.go_live("b", when=2.0)
    assert (a.stream_id, b.stream_id) == ("stream_a", "stream_b") == (stream_id_for("a"),
                                                                     stream_id_for("b"))
    assert streams.ids() == ["stream_a", "stream_b"]
    assert streams.resolve(None) == b
    assert streams.resolve("stream_a") == a
    assert streams.end("stream_b") == b
    assert streams.resolve(None) == a
    assert streams.end("stream_b") is None


def test_seed_errors() -> None:
    streams = Streams(max_streams=1)
    with pytest.raises(StreamNotFound, match=r"^No audio stream available$"):
        streams.resolve(None)
    with pytest.raises(StreamNotFound, match=r"^No audio stream available$"):
        streams.resolve("stream_x")
    streams.go_live("a", 0.0)
    with pytest.raises(StreamEnded, match=r"^Stream ended$"):
        streams.resolve("stream_x")
    with pytest.raises(Conflict):
        streams.go_live("a", 1.0)
    with pytest.raises(CapacityError):
        streams.go_live("b", 1.0)
    with pytest.raises(ValueError):
        Streams(0)


def test_audience() -> None:
    streams = Streams(4)
    streams.join_audience("c1")
    streams.join_audience("c2")
    streams.leave_audience("c1")
    streams.leave_audience("nobody")
    assert streams.audience() == ("c2",)
