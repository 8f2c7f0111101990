"""Voice's per-connection rate limits, and the offer the SDP limits stop before aiortc.

Every ``webrtc_offer`` and ``start_receiving`` builds a server-side peer connection (or
asks for one), so ``VOICE_OFFER_RATE`` counts them per connection; ``VOICE_CANDIDATE_RATE``
counts ``ice_candidate``. The one past the limit gets ``rate_limited`` with ``retry_after``
and the connection stays open; the next window allows again.
"""

from __future__ import annotations

from tests.support import FakeClock, WsClient, running

CANDIDATE = {"type": "ice_candidate",
             "candidate": {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host",
                           "sdpMid": "0", "sdpMLineIndex": 0}}


async def test_offers_and_receive_requests_past_the_rate_are_refused() -> None:
    clock = FakeClock()
    async with running(clock=clock, voice_offer_rate=(3, 10.0)) as srv:
        ws = await WsClient.connect(srv.ws_url + "/voice")
        asks = [{"type": "start_receiving", "stream_id": "none"},
                {"type": "webrtc_offer", "offer": {"type": "offer", "sdp": "v=0\r\n"}},
                {"type": "start_receiving"}]
        for ask in asks:   # refused for what they are, but counted
            await ws.send(ask)
            assert (await ws.expect("error"))["code"] in ("no_stream", "conflict")
        await ws.send(asks[0])
        refused = await ws.expect("error")
        assert refused["code"] == "rate_limited"
        assert "VOICE_OFFER_RATE" in refused["error"]
        clock.advance(10)
        await ws.send(asks[0])
        assert (await ws.expect("error"))["code"] == "no_stream"
        assert not ws.ws.closed
        await ws.close()


async def test_candidates_past_the_rate_are_refused_and_the_connection_stays() -> None:
    async with running(voice_candidate_rate=(20, 60.0)) as srv:
        ws = await WsClient.connect(srv.ws_url + "/voice")
        for _ in range(20):        # no peer yet: accepted and ignored, as the seed says
            await ws.send(CANDIDATE)
        await ws.send({"type": "get_available_streams"})   # all 20 were taken quietly
        assert (await ws.recv())["type"] == "available_streams"
        await ws.send(CANDIDATE)
        refused = await ws.expect("error")
        assert refused["code"] == "rate_limited"
        assert refused["retry_after"] > 0
        await ws.send({"type": "get_available_streams"})
        assert (await ws.expect("available_streams"))["streams"] == []
        await ws.close()


async def test_an_offer_of_578_media_sections_is_refused_before_aiortc_parses_it() -> None:
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
           + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:x\r\n" * 578)
    assert len(sdp) < 64 * 1024       # inside SDP_MAX_BYTES: SDP_MAX_MEDIA stops it
    async with running() as srv:
        ws = await WsClient.connect(srv.ws_url + "/voice")
        await ws.send({"type": "start_sending"})
        await ws.expect("sender_ready")
        await ws.send({"type": "webrtc_offer", "offer": {"type": "offer", "sdp": sdp}})
        refused = await ws.expect("error")
        assert refused["code"] == "invalid_sdp"
        assert "SDP_MAX_MEDIA" in refused["error"]
        await ws.close()
