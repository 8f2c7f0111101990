"""The pure stream registry behind seed 002: latest, lookups, errors, limits."""

from __future__ import annotations

import pytest

from rtchub.base.connection import Address
from rtchub.cluster.memory import MemoryStore
from rtchub.config import Limits
from rtchub.errors import CapacityError, Conflict, StreamEnded, StreamNotFound
from rtchub.features.voice.events import AUDIENCE, StreamAvailable, StreamListeners
from rtchub.features.voice.events import StreamEnded as StreamEndedEvent
from rtchub.features.voice.rules import StreamInfo, Streams, stream_id_for
from rtchub.features.voice.service import LISTENER_INTERVAL, VoiceService
from tests.support import FakeClock


def live(owner: str, when: float) -> StreamInfo:
    return StreamInfo(stream_id_for(owner), Address("n", owner), owner, when, when)


def test_latest_and_order() -> None:
    streams = Streams(max_streams=3)
    assert streams.latest() is None
    a = streams.go_live(live("a", 1.0))
    b = streams.go_live(live("b", 2.0))
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
    streams.go_live(live("a", 0.0))
    with pytest.raises(StreamEnded, match=r"^Stream ended$"):
        streams.resolve("stream_x")
    with pytest.raises(Conflict):
        streams.go_live(live("a", 1.0))
    with pytest.raises(CapacityError):
        streams.go_live(live("b", 1.0))
    with pytest.raises(ValueError):
        Streams(0)


def test_mp3_lookup() -> None:
    streams = Streams(2)
    with pytest.raises(StreamNotFound, match=r"^No audio stream available$"):
        streams.find(None)
    a = streams.go_live(live("a", 0.0))
    assert streams.find(None) == streams.find("stream_a") == a
    with pytest.raises(StreamNotFound, match=r"^Stream not found$"):
        streams.find("stream_x")


class Recorder:
    """A courier that keeps what it was asked to deliver or broadcast."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object]] = []

    def deliver(self, to: Address, event: object) -> bool:
        self.sent.append((to.conn, event))
        return True

    def broadcast(self, topic: str, event: object) -> None:
        self.sent.append((topic, event))

    def subscribe(self, topic: str, conn: str) -> None:
        self.sent.append(("subscribe", conn))

    def unsubscribe(self, topic: str, conn: str) -> None:
        self.sent.append(("unsubscribe", conn))


async def test_service_announces_and_throttles_listener_counts() -> None:
    clock, courier = FakeClock(), Recorder()
    service = VoiceService(courier, Limits(voice_max_streams=2), clock, MemoryStore(clock), "n",
                           wall=lambda: 1.7e9)
    info = await service.go_live(Address("n", "c1"), "abc", " Kitchen ")
    assert (info.stream_id, info.name, info.started_at) == ("stream_abc", "Kitchen", 1.7e9)
    assert courier.sent == [(AUDIENCE, StreamAvailable("stream_abc", "Kitchen", 1.7e9))]
    courier.sent.clear()
    service.listeners_changed("stream_abc", 0, 0)      # nothing changed: nothing sent
    service.listeners_changed("stream_abc", 1, 0)      # the first change goes at once
    service.listeners_changed("stream_abc", 2, 0)      # later ones at most once a second
    service.listeners_changed("stream_abc", 2, 3)
    assert courier.sent == [("c1", StreamListeners("stream_abc", 1, 0))]
    clock.advance(LISTENER_INTERVAL - 0.01)
    assert len(courier.sent) == 1
    clock.advance(0.01)
    assert courier.sent[1:] == [("c1", StreamListeners("stream_abc", 2, 3))]
    assert service.listeners("stream_abc") == (2, 3)
    service.listeners_changed("stream_abc", 0, 0)      # pending when the stream ends: dropped
    assert await service.end("stream_abc") == info
    assert await service.end("stream_abc") is None
    clock.advance(5)
    assert courier.sent[2:] == [(AUDIENCE, StreamEndedEvent("stream_abc"))]
    other = await service.go_live(Address("n", "c2"), "def", None)
    assert other.name == "Stream 1"  # numbered among the streams live now
