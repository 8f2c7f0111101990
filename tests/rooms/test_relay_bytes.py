"""The relay's exact output on the /ws fast path, pinned while its hot path is tuned."""

from __future__ import annotations

import aiohttp

from tests.support import TIMEOUT, Running, WsClient

SDP = "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


async def raw(client: WsClient) -> str:
    msg = await client.receive(TIMEOUT)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    assert isinstance(msg.data, str)
    return msg.data


async def test_relayed_frames_are_byte_exact(server: Running) -> None:
    a = await WsClient.connect(server.ws_url)
    b = await WsClient.connect(server.ws_url)
    try:
        await a.join("r", "alice")
        await b.join("r", "bob")
        await a.expect("room_members")
        # a forged "from" is replaced; unknown fields are dropped; sdp is relayed verbatim
        await a.send({"type": "offer", "to": "bob", "from": "mallory", "extra": 1,
                      "sdp": {"type": "offer", "sdp": SDP}})
        assert await raw(b) == ('{"type":"offer","room":"r","from":"alice","to":"bob",'
                                '"sdp":{"type":"offer","sdp":"v=0\\r\\no=- 46117 2 IN IP4 '
                                '127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n"}}')
        await b.send({"type": "candidate", "to": "alice", "candidate": None})
        assert await raw(a) == ('{"type":"candidate","room":"r","from":"bob","to":"alice",'
                                '"candidate":null}')
        await a.send({"type": "answer", "to": "alice", "sdp": {"type": "answer", "sdp": SDP}})
        error = await a.expect("error")
        assert error["code"] == "invalid_field"
        # a relay after leaving is refused; the peer sees the membership change only
        await b.send({"type": "leave"})
        assert (await a.expect("room_members"))["members"] == ["alice"]
        await b.send({"type": "hangup", "to": "alice"})
        assert (await b.expect("error"))["code"] == "not_in_room"
    finally:
        await a.close()
        await b.close()


async def test_signal_errors_keep_their_order(server: Running) -> None:
    """Field checks come before the membership check, as they always did."""
    a = await WsClient.connect(server.ws_url)
    try:
        await a.send({"type": "offer", "sdp": {"type": "offer", "sdp": SDP}})
        assert (await a.expect("error"))["code"] == "missing_field"
        await a.send({"type": "offer", "to": "bob", "sdp": {"type": "offer", "sdp": "x"}})
        assert (await a.expect("error"))["code"] == "invalid_sdp"
        await a.send({"type": "candidate", "to": "bob", "candidate": {"sdpMLineIndex": -1}})
        assert (await a.expect("error"))["code"] == "invalid_field"
        await a.send({"type": "hangup", "to": "bob"})
        assert (await a.expect("error"))["code"] == "not_in_room"
        await a.join("r", "alice")
        await a.send({"type": "hangup", "to": "bob"})
        assert (await a.expect("error"))["code"] == "peer_not_found"
    finally:
        await a.close()
