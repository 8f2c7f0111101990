"""Seed 001's event frames on the fast dispatch (rtchub.features.match.frames) and the
frames it leaves to python-socketio: golden frames, and both paths over a real socket."""

from __future__ import annotations

import asyncio

import orjson
from socketio import packet as sio_packet

from rtchub.features.match.frames import OrjsonPacket, decode_event, event_message
from tests.match.support import PIXEL
from tests.match.test_hostile import next_event, raw_socketio
from tests.support import running

TIMEOUT = 5.0


def test_event_frames_render_as_python_socketio_renders_them() -> None:
    for event, data in (("match-done", {"roomId": "r", "remoteUserDetails": {"socket": "s"}}),
                        ("stop-by-remote-user", None),
                        ("Message:recived", {"from": "a", "message": "é ✓ \u2028"})):
        ours = event_message(event, data)
        theirs = sio_packet.Packet(sio_packet.EVENT, [event] if data is None else [event, data])
        assert ours.encode()[0] == "4"     # an Engine.IO MESSAGE
        assert orjson.loads(ours.encode()[2:]) == orjson.loads(theirs.encode()[1:])
        assert ours.encode()[:2] == "42"
    assert event_message("stop-by-remote-user", None).encode() == '42["stop-by-remote-user"]'


def test_only_plain_event_frames_take_the_fast_dispatch() -> None:
    assert decode_event('2["request-room",{"name":"a"}]') == ("request-room", [{"name": "a"}])
    assert decode_event('2["stop-call"]') == ("stop-call", [])
    for other in ('21["request-room",{}]',       # asks for an ack
                  '2/admin,["request-room",{}]',  # another namespace
                  '51-["x",{"_placeholder":true,"num":0}]',   # binary attachments
                  "0", "1", '2["x"', "2[]", "2[1]", '2{"a":1}', "2[NaN]", b'2["x"]'):
        assert decode_event(other) is None, other


def test_python_socketio_packets_use_orjson() -> None:
    pkt = OrjsonPacket(encoded_packet='2["a",{"b":[1,2.5,null,"\\u00e9"]}]')
    assert pkt.data == ["a", {"b": [1, 2.5, None, "é"]}]
    assert OrjsonPacket(sio_packet.EVENT, ["a", {"b": 1}]).encode() == '2["a",{"b":1}]'


async def test_an_event_asking_for_an_ack_still_dispatches_in_order() -> None:
    async with running() as srv:
        a, a_sid = await raw_socketio(srv)
        b, b_sid = await raw_socketio(srv)
        request = orjson.dumps(["request-room", {"name": "Ann", "roomId": None,
                                                 "userImage": PIXEL}])
        await a.send(0x1, b"42" + request)            # the fast dispatch
        await b.send(0x1, b"427" + request)           # python-socketio's, with ack id 7
        _, ack = await asyncio.wait_for(b.recv(), TIMEOUT)
        assert ack == b"437[]"
        for raw, partner in ((a, b_sid), (b, a_sid)):
            event, data = await asyncio.wait_for(next_event(raw), TIMEOUT)
            assert event == "match-done"
            assert isinstance(data, dict) and data["remoteUserDetails"]["socket"] == partner
        a.close()
        b.close()
