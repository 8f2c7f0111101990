"""The quality score and warnings at their edges, the monitor's timing on a fake clock,
and the CALL_QUALITY_* settings."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from rtchub.calls import CallsConfig, CallsExtension, ServerPeer
from rtchub.cluster.codec import Codec
from rtchub.config import ConfigError, load
from rtchub.errors import PeerNotFound
from rtchub.features.calls.events import EVENTS, QualityChanged
from rtchub.features.calls.quality import QualityMonitor
from rtchub.features.calls.quality_rules import (
    ConnectionQuality,
    QualityThresholds,
    assess,
    grade,
    score,
    warnings,
)
from rtchub.features.calls.routes import CALL_MEDIA, quality_thresholds
from rtchub.features.calls.wire import quality_to_wire
from rtchub.media.sfu import SfuMediaConfig, SfuPeer
from tests.support import FakeClock, make_config, running

LIMITS = QualityThresholds()


@dataclass(frozen=True)
class Figures:
    send_loss: float | None = None
    receive_loss: float | None = None
    send_jitter: float | None = None
    receive_jitter: float | None = None
    rtt: float | None = None
    send_kbps: float = 500.0
    receive_kbps: float = 500.0
    video: bool = True


@pytest.mark.parametrize("loss,jitter,rtt,kbps,video,expected", [
    (None, None, None, 0.0, False, 100),     # nothing measured costs nothing
    (0.0, 10.0, 150.0, 1000.0, True, 100),   # each figure at the edge of costing anything
    (5.0, None, None, 1000.0, True, 70),     # seed 003's 5 % loss: 30 points
    (10.0, None, None, 1000.0, True, 40),
    (50.0, None, None, 1000.0, True, 40),    # loss costs at most 60
    (None, 30.0, None, 1000.0, True, 90),    # 30 ms jitter: 10 points
    (None, 500.0, None, 1000.0, True, 80),   # jitter at most 20
    (None, None, 300.0, 1000.0, True, 85),   # 300 ms round trip: 15 points
    (None, None, 5000.0, 1000.0, True, 80),  # round trip at most 20
    (None, None, None, 50.0, True, 95),      # half the minimum bitrate with video: 5
    (None, None, None, 0.0, True, 90),       # no bitrate at all with video: 10
    (None, None, None, 0.0, False, 100),     # audio only: bitrate is not judged
    (100.0, 1000.0, 9000.0, 0.0, True, 0),   # everything at its worst: 110, kept at 0
    (-3.0, -1.0, -5.0, 1000.0, True, 100),   # nonsense below zero costs nothing
])
def test_the_score_at_its_edges(loss: float | None, jitter: float | None, rtt: float | None,
                                kbps: float, video: bool, expected: int) -> None:
    assert score(loss, jitter, rtt, kbps, video, 100.0) == expected


def test_each_warning_names_what_crossed_its_threshold() -> None:
    assert warnings(5.0, 30.0, 300.0, 100.0, True, LIMITS) == ()  # at the limits: none
    found = warnings(5.1, 31.0, 301.0, 99.0, True, LIMITS)
    assert [w.split(":")[0] for w in found] == ["high packet loss", "high jitter",
                                                "high latency", "low bitrate"]
    assert found[0] == "high packet loss: 5.1% (over 5%)"
    assert warnings(None, None, None, 0.0, False, LIMITS) == ()
    strict = QualityThresholds(packet_loss=1.0, jitter=5.0, latency=50.0, min_bitrate_kbps=0)
    assert len(warnings(1.5, 6.0, 51.0, 0.0, True, strict)) == 3  # 0 kbps minimum: no warning


def test_assess_takes_the_worse_direction_and_keeps_both() -> None:
    quality = assess("bob", "r", Figures(send_loss=1.0, receive_loss=12.0, send_jitter=40.0,
                                         receive_jitter=3.0, rtt=20.0), LIMITS, 1234.5)
    assert (quality.packet_loss, quality.jitter, quality.latency) == (12.0, 40.0, 20.0)
    assert (quality.send_loss, quality.receive_loss) == (1.0, 12.0)
    assert quality.bitrate_kbps == 1000.0
    assert quality.score == score(12.0, 40.0, 20.0, 1000.0, True, 100.0) == 25
    assert quality.grade == "poor"
    assert [w.split(":")[0] for w in quality.warnings] == ["high packet loss", "high jitter"]
    data = quality.to_dict()
    assert data["warnings"] == list(quality.warnings) and data["measured_at"] == 1234.5
    assert json.loads(json.dumps(quality_to_wire(quality)))["id"] == "bob"
    unknown = assess("bob", "r", Figures(), LIMITS, 0.0)
    assert (unknown.packet_loss, unknown.jitter, unknown.latency, unknown.score) == (
        0.0, 0.0, None, 100)


def test_grades_and_sameness() -> None:
    assert [grade(s) for s in (100, 80, 79, 50, 49, 0)] == [
        "good", "good", "fair", "fair", "poor", "poor"]
    a = assess("p", "r", Figures(receive_loss=1.01), LIMITS, 1.0)
    b = assess("p", "r", Figures(receive_loss=1.04), LIMITS, 2.0)
    c = assess("p", "r", Figures(receive_loss=1.2), LIMITS, 3.0)
    assert a.same_as(b) and not a.same_as(c) and not a.same_as(None)


@pytest.mark.parametrize("fields", [{"packet_loss": -1}, {"packet_loss": 101},
                                    {"jitter": -0.1}, {"min_bitrate_kbps": -5}])
def test_thresholds_refuse_nonsense(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="quality threshold"):
        QualityThresholds(**fields)


async def test_the_monitor_measures_every_interval_on_its_clock() -> None:
    clock = FakeClock()
    monitor = QualityMonitor(clock, interval=5.0, history=3)
    reports: list[tuple[str, tuple[ConnectionQuality, ...]]] = []
    changes: list[str] = []
    monitor.on_room_report = lambda room, qualities: reports.append((room, qualities))
    remove = monitor.on_quality_change(lambda peer_id, quality: changes.append(peer_id))
    peers = [SfuPeer(name, SfuMediaConfig(), _no_offer, clock=clock) for name in ("a", "b")]
    try:
        assert clock.pending == 0
        monitor.monitor(peers[0], "r1")
        monitor.monitor(peers[1], "r2")
        monitor.monitor(peers[1], "r2")  # again: nothing changes
        assert clock.pending == 1  # one timer for everyone
        assert monitor.get_quality("a") is None  # not measured yet
        clock.advance(4.9)
        assert changes == []
        clock.advance(0.1)
        assert sorted(changes) == ["a", "b"]
        assert [room for room, _ in reports] == ["r1", "r2"]
        first = monitor.get_quality("a", "r1")
        assert first is not None and first.score == 100 and first.room == "r1"
        clock.advance(5.0)  # the same figures: no change reported, history grows
        assert len(changes) == 2 and len(reports) == 2
        clock.advance(10.0)
        assert len(monitor.get_history("a")) == 3  # bounded
        assert set(monitor.room_figures()) == {"r1", "r2"}
        assert monitor.room_figures()["r1"]["score"] == 100.0
        snapshot = monitor.snapshot()
        assert set(snapshot) == {"r1", "r2"} and len(snapshot["r1"]["a"]) == 3
        assert json.loads(json.dumps(snapshot)) == snapshot  # plain data
        assert monitor.snapshot("r2", history=False)["r2"]["b"][0]["peer_id"] == "b"
        remove()
        monitor.stop("a")
        with pytest.raises(PeerNotFound):
            monitor.get_quality("a")
        monitor.stop("a")  # twice: nothing
        assert clock.pending == 1
        monitor.stop("b", "r2")
        assert clock.pending == 0 and monitor.room_figures() == {}
    finally:
        monitor.close()
        for peer in peers:
            await peer.close()


async def test_the_same_id_in_two_rooms_needs_the_room() -> None:
    clock = FakeClock()
    monitor = QualityMonitor(clock)
    peers = [SfuPeer("a", SfuMediaConfig(), _no_offer, clock=clock) for _ in range(2)]
    try:
        monitor.monitor(peers[0], "r1")
        monitor.monitor(peers[1], "r2")
        with pytest.raises(PeerNotFound, match="several rooms"):
            monitor.get_quality("a")
        assert monitor.get_quality("a", "r2") is None
        assert monitor.peers() == [("r1", "a"), ("r2", "a")]
    finally:
        monitor.close()
        for peer in peers:
            await peer.close()
    with pytest.raises(ValueError, match="interval"):
        QualityMonitor(clock, interval=0)


async def _no_offer(sdp: str) -> None:
    raise AssertionError("no offer expected")


def test_the_quality_settings() -> None:
    calls = load({}).calls
    assert (calls.quality_interval, calls.quality_max_loss, calls.adaptive_quality) == (
        5.0, 5.0, True)
    assert quality_thresholds(calls) == QualityThresholds(5.0, 30.0, 300.0, 100.0)
    tuned = load({"CALL_QUALITY_INTERVAL": "1s", "CALL_QUALITY_MAX_LOSS": "2.5%",
                  "CALL_QUALITY_MAX_JITTER": "50ms", "CALL_QUALITY_MAX_RTT": "1s",
                  "CALL_QUALITY_MIN_BITRATE": "0", "CALL_ADAPTIVE_QUALITY": "off"}).calls
    assert quality_thresholds(tuned) == QualityThresholds(2.5, 50.0, 1000.0, 0.0)
    assert tuned.quality_interval == 1.0 and not tuned.adaptive_quality


@pytest.mark.parametrize("env,message", [
    ({"CALL_QUALITY_INTERVAL": "100ms"},
     "CALL_QUALITY_INTERVAL=0.1: expected a duration between 250ms and 1h"),
    ({"CALL_QUALITY_INTERVAL": "0s"}, "CALL_QUALITY_INTERVAL='0s': expected a duration"),
    ({"CALL_QUALITY_MAX_LOSS": "101"}, "CALL_QUALITY_MAX_LOSS='101': expected a percentage"),
    ({"CALL_QUALITY_MAX_LOSS": "lots"}, "CALL_QUALITY_MAX_LOSS='lots': expected a percentage"),
    ({"CALL_QUALITY_MAX_RTT": "2m"}, "CALL_QUALITY_MAX_RTT=120: expected a duration"),
    ({"CALL_QUALITY_MIN_BITRATE": "200M"}, "CALL_QUALITY_MIN_BITRATE=200000000: expected"),
    ({"CALL_ADAPTIVE_QUALITY": "maybe"}, "CALL_ADAPTIVE_QUALITY='maybe': expected true or"),
])
def test_bad_quality_settings_stop_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(env)
    assert str(refused.value).startswith(message)


def test_quality_frames_cross_nodes_through_the_codec() -> None:
    codec = Codec()
    codec.register(*EVENTS)
    event = QualityChanged("r", (assess("a", "r", Figures(receive_loss=7.0, rtt=40.0),
                                        LIMITS, 5.0),))
    assert codec.decode(codec.encode(event)) == event


async def test_the_python_api_hands_out_the_servers_monitor() -> None:
    clock = FakeClock()
    async with running(make_config(node_ips=("127.0.0.1",)), clock=clock) as srv:
        ext = CallsExtension(srv.server.app, CallsConfig(require_auth=False))
        monitor = ext.get_quality_monitor()
        assert monitor is srv.server.app[CALL_MEDIA].quality
        room = ext.create_call_room("q", topology="sfu")
        peer = await room.join_call("ann")
        assert isinstance(peer, ServerPeer)
        assert monitor.peers("q") == [("q", "ann")]
        assert room.get_participants()[0].quality is None  # not measured yet
        clock.advance(monitor.interval)
        quality = room.get_participants()[0].quality
        assert quality is not None and quality == monitor.get_quality("ann")
        assert quality.to_dict()["peer_id"] == "ann"
        monitor.stop("ann")
        assert monitor.peers() == []
        monitor.monitor(peer)  # seed 003's Monitor(peer): the API's peer, its room known
        assert monitor.peers() == [("q", "ann")] and monitor.get_history("ann") == []
        await peer.close()
        assert monitor.peers() == []
