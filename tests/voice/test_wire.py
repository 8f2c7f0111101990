"""Seed 002's wire format: golden frames decode to typed messages; server frames encode."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rtchub.base.connection import Address
from rtchub.errors import InvalidField, InvalidSDP, MessageTooLarge, MissingField, UnknownType
from rtchub.features.voice import wire
from rtchub.features.voice.rules import StreamInfo
from rtchub.wire.webrtc import SdpLimits

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
LIMITS = SdpLimits(64 * 1024, 64)


@pytest.mark.parametrize(("frame", "message"), [
    ({"type": "start_sending"}, wire.StartSending()),
    ({"type": "start_sending", "name": " Kitchen radio "}, wire.StartSending("Kitchen radio")),
    ({"type": "start_receiving"}, wire.StartReceiving(None)),
    ({"type": "start_receiving", "stream_id": ""}, wire.StartReceiving(None)),
    ({"type": "start_receiving", "stream_id": "stream_x"}, wire.StartReceiving("stream_x")),
    ({"type": "webrtc_offer", "offer": {"sdp": SDP, "type": "offer"}}, wire.WebrtcOffer(SDP)),
    ({"type": "webrtc_offer", "offer": {"sdp": SDP}}, wire.WebrtcOffer(SDP)),
    ({"type": "webrtc_answer", "answer": {"sdp": SDP, "type": "answer"}},
     wire.WebrtcAnswer(SDP)),
    ({"type": "ice_candidate", "candidate": {"candidate": "candidate:1 1 UDP 1 1.2.3.4 5 typ "
                                             "host", "sdpMid": "0", "sdpMLineIndex": 0}},
     wire.IceCandidate("candidate:1 1 UDP 1 1.2.3.4 5 typ host", "0", 0)),
    ({"type": "ice_candidate", "candidate": None}, wire.IceCandidate(None, None, None)),
    ({"type": "get_available_streams"}, wire.GetAvailableStreams()),
    ({"type": "stop_stream"}, wire.StopStream()),
    ({"type": "local_ip", "ip": "192.168.1.100"}, wire.LocalIp()),
])
def test_golden_frames(frame: dict[str, Any], message: wire.VoiceMessage) -> None:
    assert wire.decode(frame, LIMITS) == message


@pytest.mark.parametrize(("frame", "error"), [
    ({"type": "webrtc_offer"}, MissingField),
    ({"type": "webrtc_offer", "offer": {"sdp": SDP, "type": "answer"}}, InvalidSDP),
    ({"type": "webrtc_answer", "answer": {"sdp": "x", "type": "answer"}}, InvalidSDP),
    ({"type": "webrtc_answer", "answer": {"sdp": "v=" + "a" * 70000}}, MessageTooLarge),
    ({"type": "webrtc_offer", "offer": {"sdp": SDP + "m=audio\r\n" * 65}}, InvalidSDP),
    ({"type": "start_sending", "name": "n" * 65}, InvalidField),
    ({"type": "start_sending", "name": 7}, InvalidField),
    ({"type": "start_receiving", "stream_id": "s" * 200}, InvalidField),
    ({"type": "ice_candidate", "candidate": {"sdpMLineIndex": True}}, InvalidField),
    ({"type": "nope"}, UnknownType),
])
def test_bad_frames(frame: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        wire.decode(frame, LIMITS)


def test_server_frames() -> None:
    a = StreamInfo("a", Address("n", "c1"), "Kitchen", 1.0, 1700000000.5)
    b = StreamInfo("b", Address("n", "c2"), "Stream 2", 2.0, 1700000001.0)
    assert orjson.loads(wire.available_streams([a, b], lambda sid: {"a": 3}.get(sid, 0))) == {
        "type": "available_streams", "streams": ["a", "b"],
        "details": [{"stream_id": "a", "name": "Kitchen", "started_at": 1700000000.5,
                     "listeners": 3},
                    {"stream_id": "b", "name": "Stream 2", "started_at": 1700000001.0,
                     "listeners": 0}]}
    assert orjson.loads(wire.sender_ready("id")) == {"type": "sender_ready",
                                                     "connection_id": "id"}
    assert orjson.loads(wire.webrtc_answer(SDP)) == {
        "type": "webrtc_answer", "answer": {"sdp": SDP, "type": "answer"}}
    assert orjson.loads(wire.webrtc_offer(SDP, "stream_a")) == {
        "type": "webrtc_offer", "offer": {"sdp": SDP, "type": "offer"}, "stream_id": "stream_a"}
    assert orjson.loads(wire.stream_available("s", "Kitchen", 1.5)) == {
        "type": "stream_available", "stream_id": "s", "name": "Kitchen", "started_at": 1.5}
    assert orjson.loads(wire.stream_listeners("s", 2, 5)) == {
        "type": "stream_listeners", "stream_id": "s", "webrtc": 2, "mp3": 5}
    assert orjson.loads(wire.stream_ended("s")) == {"type": "stream_ended", "stream_id": "s"}
    assert set(wire.TYPES) == {"start_sending", "start_receiving", "webrtc_offer",
                               "webrtc_answer", "ice_candidate", "get_available_streams",
                               "stop_stream", "local_ip"}
