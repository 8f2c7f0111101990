"""The SFU's SDP reading and rewriting, on a browser-shaped offer and aiortc's own output."""

from __future__ import annotations

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy

from rtchub.errors import CodecNotSupported, InvalidSDP
from rtchub.media import aiortc_adapter as adapter
from rtchub.media.sfu import SfuMediaConfig
from rtchub.media.sfu.numbering import Numbering, harmonize_offer
from rtchub.media.sfu.sdp import (
    cap_answer,
    parse_sections,
    restrict_offer,
)

# The shape of a Chromium offer (camera + microphone + a data channel), trimmed.
BROWSER_OFFER = "\r\n".join([
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
    "a=group:BUNDLE 0 1 2", "a=extmap-allow-mixed", "a=msid-semantic: WMS stream",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx", "a=ice-options:trickle",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=sendonly",
    "a=msid:stream mic-track", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111", "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=ssrc:1001 cname:x",
    "a=ssrc:1001 msid:stream mic-track",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 45", "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0", "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "a=mid:1",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=sendonly", "a=msid:stream cam-track",
    "a=rtcp-mux", "a=rtcp-rsize", "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 goog-remb",
    "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
    "a=rtpmap:102 H264/90000",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    "a=rtpmap:103 rtx/90000", "a=fmtp:103 apt=102", "a=rtpmap:104 H264/90000",
    "a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f",
    "a=rtpmap:105 rtx/90000", "a=fmtp:105 apt=104", "a=rtpmap:45 AV1/90000",
    "a=ssrc-group:FID 2001 2002", "a=ssrc:2001 cname:x", "a=ssrc:2002 cname:x",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0",
    "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "a=mid:2",
    "a=sctp-port:5000", "a=max-message-size:262144", ""])


def test_sections_say_what_a_browser_publishes() -> None:
    audio, video, data = parse_sections(BROWSER_OFFER)
    assert (audio.mid, audio.kind, audio.direction, audio.msid) == (
        "0", "audio", "sendonly", ("stream", "mic-track"))
    assert audio.sends and not audio.receives
    assert [c.name for c in audio.codecs] == ["opus", "red", "G722", "PCMU", "PCMA"]
    assert audio.codecs[0].params == {"minptime": "10", "useinbandfec": "1"}
    assert audio.extensions == {"urn:ietf:params:rtp-hdrext:ssrc-audio-level": 1,
                                "urn:ietf:params:rtp-hdrext:sdes:mid": 4}
    assert video.ssrcs == (2001, 2002)
    assert video.rtx_ssrcs == {2001: 2002}
    assert video.rtx_for(96) == 97 and video.rtx_for(45) is None
    assert [c.key for c in video.media_codecs][:2] == [
        "vp8/90000", "h264/90000;packetization-mode=1"]
    assert data.kind == "application" and data.codecs == ()


def test_the_offer_keeps_only_allowed_codecs_in_the_configured_order() -> None:
    config = SfuMediaConfig(video_codecs=("H264", "VP8"))
    audio, video, data = parse_sections(restrict_offer(BROWSER_OFFER, config))
    assert [c.payload_type for c in audio.codecs] == [111]
    # H.264 first (the config's order); its high profile is dropped (aiortc cannot answer
    # it); each kept codec keeps its RTX
    assert [c.payload_type for c in video.codecs] == [102, 103, 96, 97]
    assert video.ssrcs == (2001, 2002) and video.msid == ("stream", "cam-track")
    assert data.kind == "application"


@pytest.mark.parametrize(("config", "match"), [
    (SfuMediaConfig(audio_codecs=("PCMA",), video_codecs=("VP8",)), "none of the allowed"),
    (SfuMediaConfig(audio_codecs=(), video_codecs=("VP8",)), "allowed none"),
])
def test_a_section_with_nothing_allowed_is_refused(config: SfuMediaConfig, match: str) -> None:
    offer = BROWSER_OFFER.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8",
                                  "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0")
    with pytest.raises(CodecNotSupported, match=match):
        restrict_offer(offer, config)


def test_unknown_codec_names_and_bad_bitrates_are_refused_by_the_config() -> None:
    with pytest.raises(CodecNotSupported, match="VP9"):
        SfuMediaConfig(video_codecs=("VP8", "VP9"))
    with pytest.raises(ValueError, match="min <= max"):
        SfuMediaConfig(video_min_bitrate=3_000_000)
    assert SfuMediaConfig(video_codecs=("h264", "video/VP8")).allowed("video") == (
        "video/H264", "video/VP8")


@pytest.mark.parametrize("sdp", ["", "m=audio 9 RTP/AVP 0\r\n", "v=0\r\nm=audio nine RTP 0\r\n",
                                 "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF x\r\n",
                                 "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:zero PCMU\r\n"])
def test_unreadable_descriptions_are_invalid_sdp(sdp: str) -> None:
    with pytest.raises(InvalidSDP):
        parse_sections(sdp)


def test_caps_go_after_the_connection_line_of_each_receiving_section() -> None:
    answer = BROWSER_OFFER.replace("a=sendonly", "a=recvonly").replace(
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 45\r\nc=IN IP4 0.0.0.0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 45\r\nc=IN IP4 0.0.0.0\r\nb=AS:9")
    capped = cap_answer(answer, SfuMediaConfig(audio_max_bitrate=64_000,
                                               video_max_bitrate=1_000_000,
                                               video_max_width=640, video_max_height=360,
                                               video_max_fps=15))
    assert "c=IN IP4 0.0.0.0\r\nb=AS:64\r\nb=TIAS:64000\r\n" in capped
    assert "c=IN IP4 0.0.0.0\r\nb=AS:1000\r\nb=TIAS:1000000\r\n" in capped
    assert "b=AS:9" not in capped
    assert "a=fmtp:111 minptime=10;useinbandfec=1;maxaveragebitrate=64000" in capped
    # VP8's frame size in macroblocks (40 x 23 for 640x360) and rate (RFC 7741 6.1)
    vp8 = next(c for c in parse_sections(capped)[1].codecs if c.name == "VP8")
    assert (vp8.params["max-fs"], vp8.params["max-fr"]) == ("920", "15")
    # a section the server does not receive on is left alone
    assert cap_answer(BROWSER_OFFER, SfuMediaConfig()) == BROWSER_OFFER


async def aiortc_offer(kinds: list[str]) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[],
                                            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        for kind in kinds:
            pc.addTransceiver(kind, direction="sendonly")
        adapter.configure_ice(pc, ["127.0.0.1"], None)
        return str((await pc.createOffer()).sdp)
    finally:
        await pc.close()


async def test_the_servers_offer_speaks_the_numbering_the_connection_already_uses() -> None:
    numbering = Numbering()
    numbering.learn(BROWSER_OFFER)
    answer = restrict_offer(BROWSER_OFFER, SfuMediaConfig()).replace("a=sendonly", "a=recvonly")
    numbering.settle(answer)
    # aiortc numbers every codec and extension from its own table: opus 96, VP8 97...
    offer = await aiortc_offer(["audio", "video", "video"])
    aiortc_sections = parse_sections(offer)
    assert aiortc_sections[1].media_codecs[0].payload_type == 97  # VP8, rtx in the browser's
    sections = parse_sections(harmonize_offer(offer, numbering))
    audio, video, new = sections
    # the negotiated sections get their negotiated codecs back
    assert [c.payload_type for c in audio.codecs] == [111]
    assert [c.payload_type for c in video.codecs] == [96, 97, 102, 103]
    # the new one reuses the browser's numbers for the same codecs...
    vp8 = next(c for c in new.codecs if c.name == "VP8")
    assert vp8.payload_type == 96 and new.rtx_for(96) == 97
    # ...and takes unused ones for the rest; no number means two things
    meaning: dict[int, str] = {}
    for section in sections:
        for codec in section.codecs:
            label = f"{codec.name}/{dict(codec.params)}"
            assert meaning.setdefault(codec.payload_type, label) == label
    assert new.extensions == {"urn:ietf:params:rtp-hdrext:sdes:mid": 4,
                              "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 2}
