"""Fuzz targets: every decoder a client's bytes reach, called the way rtchub calls it.

Each target takes bytes and returns normally for any input the server survives: the
errors its caller turns into an answer (the one error vocabulary, or the exceptions a
library's caller in rtchub catches) are swallowed here exactly as there. Anything else
escaping is a crash: a frame that would reach the executor's error boundary as a server
error, kill aiortc's receive loop, or break the head sniffer.

``ALL`` dispatches on the first byte to every target (one short run in the suite covers
them all; long runs by hand take one each, docs/reliability.md); ``SEEDS`` are real frames.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, cast

import jwt
import orjson
import socketio.packet
from aiortc.rtp import RtcpPacket, RtpPacket
from aiortc.sdp import candidate_from_sdp

from rtchub.config import Limits
from rtchub.errors import RtcHubError
from rtchub.features.calls import auth as call_auth
from rtchub.features.calls import forge as call_forge
from rtchub.features.calls import wire as calls_wire
from rtchub.features.match import wire as match_wire
from rtchub.features.match.eio import EioCodec
from rtchub.features.pairing import wire as pairing_wire
from rtchub.features.rooms import wire as rooms_wire
from rtchub.features.voice import wire as voice_wire
from rtchub.media import keyframes
from rtchub.media.fanout import ForwardingStats
from rtchub.media.peers import _description, opus_payload_type, rtx_payload_type
from rtchub.media.recording import payloads, pictures
from rtchub.media.rtcp_compound import RtcpError, read_compound
from rtchub.media.sfu import rtp as sfu_packets
from rtchub.media.sfu.config import SfuMediaConfig
from rtchub.media.sfu.demux import Demuxer
from rtchub.media.sfu.downtrack import Downtrack, payload_map
from rtchub.media.sfu.numbering import Numbering, harmonize_offer
from rtchub.media.sfu.sdp import Codec, parse_sections, reject_sections, restrict_offer
from rtchub.media.sfu.simulcast import receive_simulcast, simulcast_offered
from rtchub.media.sfu.uplink import TrackUplink
from rtchub.media.sfu.vp8 import Vp8Descriptor, Vp8Rewriter
from rtchub.net.router import split_target
from rtchub.net.sniffer import HeadSniffer, parse_head
from rtchub.wire.frame import parse_frame
from rtchub.wire.webrtc import SdpLimits, check_candidate, check_description

__all__ = ["ALL", "SEEDS", "TARGETS"]

Target = Callable[[bytes], None]
_LIMITS: Final = Limits(sdp_max_bytes=8192, sdp_max_media=8)
_SDP: Final = SdpLimits(_LIMITS.sdp_max_bytes, _LIMITS.sdp_max_media)
_EIO: Final = EioCodec()


def rooms(data: bytes) -> None:
    """A /ws rooms frame: the session's parse, then the dialect's decode (seed 000)."""
    try:
        obj = parse_frame(data)
        if obj["type"] in rooms_wire.SIGNAL_TYPES:
            rooms_wire.decode_signal(obj, _SDP)
        rooms_wire.decode(obj, _SDP)
    except RtcHubError:
        pass


def voice(data: bytes) -> None:
    """A voice frame (seed 002), and a candidate line as the voice handler gives it to
    aiortc (catching what the handler catches)."""
    try:
        msg = voice_wire.decode(parse_frame(data), _SDP)
    except RtcHubError:
        return
    if isinstance(msg, voice_wire.IceCandidate) and msg.candidate is not None:
        text = msg.candidate.removeprefix("a=").removeprefix("candidate:")
        with contextlib.suppress(ValueError, IndexError, AssertionError):
            candidate_from_sdp(text)


def pairing(data: bytes) -> None:
    """A pair relay frame and a relay query string (seed 004)."""
    try:
        obj = parse_frame(data)
        raw = orjson.dumps(obj) if obj["type"] in pairing_wire.RELAY_TYPES else b""
        pairing_wire.decode(obj, raw)
    except RtcHubError:
        pass
    _, query = split_target("/ws?" + data.decode("utf-8", "replace"))
    with contextlib.suppress(RtcHubError):
        pairing_wire.parse_query(query)


def rendezvous(data: bytes) -> None:
    """A ``POST /rendezvous/redeem`` body, for codes of 4 and 6 digits (seed 004)."""
    for digits in (4, 6):
        with contextlib.suppress(RtcHubError):
            code = pairing_wire.parse_redeem(data, digits)
            assert len(code) == digits and code.isascii() and code.isdigit(), code


def match(data: bytes) -> None:
    """A Socket.IO packet as python-socketio decodes it (only ValueError-like errors, which
    rtchub logs as a client's fault) and as the WebSocket fast path reads it, then an
    event's payload through seed 001's validators."""
    text = data.decode("utf-8", "replace")
    with contextlib.suppress(ValueError, IndexError, KeyError, TypeError):
        socketio.packet.Packet(encoded_packet=text)
    with contextlib.suppress(RtcHubError):     # the WebSocket fast path's own framing
        _EIO.parse(data)
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    if not isinstance(event, list) or not event or not isinstance(event[0], str):
        return
    with contextlib.suppress(RtcHubError):
        match_wire.decode(event[0], event[1] if len(event) > 1 else None, _LIMITS)


def sdp(data: bytes) -> None:
    """A description or a candidate through the one validator; a description it passes
    through what voice does with it (aiortc's parser behind voice's own guard)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = {"type": "offer", "sdp": data.decode("utf-8", "replace")}
    with contextlib.suppress(RtcHubError):
        check_candidate(value, "candidate")
    try:
        desc = check_description(value, "offer", _SDP)
    except RtcHubError:
        return
    text = desc.get("sdp")
    if not isinstance(text, str):
        return
    try:
        _description(text, "offer")
    except RtcHubError:
        return
    rtx_payload_type(text, 96)
    with contextlib.suppress(RtcHubError):
        opus_payload_type(text)


def rtp(data: bytes) -> None:
    """An RTP packet as aiortc parses it (it drops ValueError), then rtchub's payload
    parsers: keyframe detection, the recorder's depacketizers and picture headers."""
    try:
        packet = RtpPacket.parse(data)
    except ValueError:
        payload = data
    else:
        payload = packet.payload
    keyframes.vp8_starts_keyframe(payload)
    keyframes.vp9_starts_keyframe(payload)
    keyframes.h264_starts_keyframe(payload)
    for parse in (payloads.parse_vp8, payloads.parse_vp9, payloads.parse_h264,
                  payloads.parse_opus):
        with contextlib.suppress(payloads.MalformedPayload):
            parse(payload)
    with contextlib.suppress(payloads.MalformedPayload):
        payloads.opus_samples(payload)
    pictures.vp8_size(payload)
    pictures.vp9_size(payload)
    pictures.h264_size(payload)
    pictures.vp8_is_keyframe(payload)
    pictures.vp9_is_keyframe(payload)
    pictures.h264_is_keyframe(payload)


def rtcp(data: bytes) -> None:
    """An RTCP compound packet as aiortc parses it and as the SFU's wire reads it (both
    drop ValueError; the wire's RtcpError is one)."""
    with contextlib.suppress(ValueError):
        RtcpPacket.parse(data)
    with contextlib.suppress(RtcpError):
        read_compound(data)


def calls(data: bytes) -> None:
    """A call-room frame on /ws (seed 003): the session's parse, then the calls dialect's
    decode; and the same object as forge's endpoint reads it (its recipient, its
    description or candidate)."""
    try:
        obj = parse_frame(data)
    except RtcHubError:
        return
    with contextlib.suppress(RtcHubError):
        calls_wire.decode(obj, _LIMITS.sdp_max_bytes)
    with contextlib.suppress(RtcHubError):
        call_forge._recipient(obj)
    with contextlib.suppress(RtcHubError):
        check_candidate(obj.get("candidate"), "candidate")
    with contextlib.suppress(RtcHubError):
        check_description(obj.get("sdp"), "sdp", _SDP, default="offer")


_TOKEN_SECRET: Final = "fuzz-secret-of-thirty-two-bytes!!"


def token(data: bytes) -> None:
    """A join token: the bytes as a token, and as the claims of a token signed with the
    server's secret (so the claim checks, not only the signature, are reached)."""
    with contextlib.suppress(RtcHubError):
        call_auth.verify_join_token(data.decode("utf-8", "replace"), "r", _TOKEN_SECRET,
                                    lambda: 1_000.0)
    try:
        claims = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    if not isinstance(claims, dict):
        return
    signed = jwt.encode(claims, _TOKEN_SECRET, algorithm="HS256")
    with contextlib.suppress(RtcHubError):
        call_auth.verify_join_token(signed, "r", _TOKEN_SECRET, lambda: 1_000.0)


def sfu_rtp(data: bytes) -> None:
    """An RTP packet as the SFU reads it itself (its header parser and the RFC 8285
    extension lookup for every id), before any of it reaches aiortc."""
    try:
        header = sfu_packets.RtpHeader.parse(data)
    except sfu_packets.MalformedPacket:
        return
    for ext_id in range(1, 15):
        value = sfu_packets.find_extension(data, header.ext_profile, header.ext_start,
                                       header.ext_end, ext_id)
        if value and ext_id == 1:
            sfu_packets.audio_level(value)


_SFU: Final = SfuMediaConfig()


def sfu_sdp(data: bytes) -> None:
    """A client's offer as the SFU reads it before aiortc: its sections, the codecs it
    keeps, the numbering it learns, which a later server offer is then made to follow."""
    text = data.decode("utf-8", "replace")
    try:
        sections = parse_sections(text)
        restrict_offer(text, _SFU)
    except RtcHubError:
        return
    numbering = Numbering()
    numbering.learn(text)
    harmonize_offer(_OFFER.replace("sendonly", "recvonly"), numbering)
    reject_sections(text, {s.mid for s in sections if s.mid is not None})


class _Simulcast:
    """One simulcast VP8 track as the SFU holds it (uplink with q/h/f, its demuxer, one
    subscriber's downtrack with a layer switch), fed packet after packet: state carries
    over from input to input as it does on a live connection."""

    def __init__(self) -> None:
        from tests.media.simulcast_support import MID_ID, RID_ID, RIDS, RRID_ID
        from tests.media.test_sfu_downtrack import VP8, VP8_RTX, Recorder, Sender
        from tests.support import FakeClock

        self.clock = FakeClock()
        stats = ForwardingStats()
        self.uplink = TrackUplink("video", Recorder(), 0xAAAA, stats, clock=self.clock)
        self.uplink.set_codecs({96: VP8, 97: VP8_RTX})
        self.uplink.set_rids(RIDS)
        self.demux = Demuxer()
        self.demux.mid_id, self.demux.rid_id, self.demux.rrid_id = MID_ID, RID_ID, RRID_ID
        self.demux.add_track("0", self.uplink)
        self.downtrack = Downtrack(self.uplink, Recorder(), cast(Any, Sender(0xB0B)), stats,
                                   cache_size=64)
        mine = Codec(100, "VP8", 90000, None, {}, ())
        self.downtrack.configure(payload_map(self.uplink.codecs, {100: mine}), None)
        self.downtrack.start()


_SIMULCAST: list[_Simulcast] = []   # made on first use (it imports test helpers)
_REWRITER: Final = Vp8Rewriter()


def simulcast(data: bytes) -> None:
    """Simulcast as a client's bytes reach it: the RIDs and extension ids read from an
    offer and the answer that receives them; a publisher's RTP packet (as the SRTP wire
    hands it over: version 2, at least a header) through the RID demuxer, the layer
    switch and the VP8 picture-id rewriter; a VP8 payload descriptor alone."""
    text = data.decode("utf-8", "replace")
    try:
        offered = simulcast_offered(text)
        receive_simulcast(text, offered)
    except RtcHubError:
        pass
    descriptor = Vp8Descriptor(data)
    if descriptor.picture_id is not None:
        _REWRITER.rewrite(1, data)
    if len(data) >= 12 and data[0] >> 6 == 2:
        if not _SIMULCAST:
            _SIMULCAST.append(_Simulcast())
        sc = _SIMULCAST[0]
        sc.demux(data, int(sc.clock() * 1000))
        sc.clock.advance(0.01)


class _Transport(asyncio.Transport):
    """Enough of a transport for the head sniffer: records what it was told."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class _Fallback(asyncio.Protocol):
    """Stands in for aiohttp: takes the replayed head."""

    def __init__(self) -> None:
        self.data = bytearray()

    def data_received(self, data: bytes) -> None:
        self.data += data


class _Timer:
    def cancel(self) -> None:
        pass


class _Clock:
    def __call__(self) -> float:
        return 0.0

    def call_later(self, delay: float, callback: Callable[[], object]) -> _Timer:
        return _Timer()

    async def sleep(self, delay: float) -> None:
        raise AssertionError("the sniffer never sleeps")


def head(data: bytes) -> None:
    """The head sniffer in front of both HTTP stacks: ``data`` in chunks (the first byte
    sets the chunk size), then what it parsed. Whatever arrives, the socket is handed
    over whole or refused; nothing is lost and nothing raises."""
    parse_head(data)
    size = 1 + (data[0] if data else 0)
    fallback = _Fallback()
    decided: list[tuple[bytes, bytes, bool]] = []

    def decide(method: bytes, target: bytes, upgrade: bool, transport: asyncio.Transport
               ) -> asyncio.BaseProtocol | None:
        decided.append((method, target, upgrade))
        split_target(target.decode("latin-1"))
        return None

    sniffer = HeadSniffer(decide, lambda: fallback, cast(Any, _Clock()), 10.0)
    transport = _Transport()
    sniffer.connection_made(transport)
    for start in range(0, len(data), size):
        if transport.protocol is not None:
            fallback.data_received(data[start:start + size])
        elif not transport.closed:
            sniffer.data_received(data[start:start + size])
    if transport.protocol is None and not transport.closed:
        sniffer.eof_received()
    if transport.protocol is not None:
        assert bytes(fallback.data) == data, "the sniffer lost or changed bytes"
    elif transport.closed:
        assert transport.written.startswith(b"HTTP/1.1 431 ")
    else:
        assert not data, "bytes arrived and the sniffer neither handed over nor refused"


TARGETS: Final[dict[str, Target]] = {
    "rooms": rooms, "voice": voice, "pairing": pairing, "match": match, "sdp": sdp,
    "rtp": rtp, "rtcp": rtcp, "head": head, "rendezvous": rendezvous,
    "calls": calls, "token": token, "sfu_rtp": sfu_rtp, "sfu_sdp": sfu_sdp,
    "simulcast": simulcast,
}
_ORDER: Final = tuple(TARGETS.values())


def ALL(data: bytes) -> None:
    """Every target: the first byte picks one, the rest is its input."""
    if data:
        _ORDER[data[0] % len(_ORDER)](data[1:])


_OFFER: Final = ("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                 "a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 96\r\n"
                 "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Ke9G\r\n"
                 "a=ice-pwd:fQ9Tj1TbWx2c3dLwGd3B1V6q\r\na=fingerprint:sha-256 "
                 + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\na=mid:0\r\na=sendonly\r\n"
                 "a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\n"
                 "a=rtpmap:96 rtx/48000\r\na=fmtp:96 apt=111\r\n")
_LINE: Final = "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"
_CANDIDATE: Final = {"candidate": _LINE, "sdpMid": "0", "sdpMLineIndex": 0}


def _simulcast_seed(layer: int) -> bytes:
    """A VP8 keyframe's first packet of layer ``layer`` (q, h, f) with its mid and RID."""
    head = bytes.fromhex("906000010000006400005000")
    head = head[:8] + (0x5000 + layer).to_bytes(4, "big")
    ext = bytes([0x90, ord("0"), 0xA0, ord("qhf"[layer])])    # mid (id 9), rid (id 10)
    return (head + bytes.fromhex("bede0001") + ext
            + bytes.fromhex("90c0800100")          # VP8 descriptor: X, S; I (15 bits), L
            + bytes.fromhex("500200" "9d012a") + b"\x80\x02\xe0\x01")  # keyframe 640x480


def _j(obj: object) -> bytes:
    return orjson.dumps(obj)


SEEDS: Final[dict[str, list[bytes]]] = {
    "rooms": [_j({"type": "join", "room": "lobby", "from": "alice"}),
              _j({"type": "offer", "to": "bob", "sdp": {"type": "offer", "sdp": _OFFER}}),
              _j({"type": "candidate", "to": "bob", "candidate": _CANDIDATE}),
              _j({"type": "hangup", "to": "bob"}), _j({"type": "leave"}),
              _j({"type": "ping"})],
    "voice": [_j({"type": "start_sending", "name": "Radio"}),
              _j({"type": "webrtc_offer", "offer": {"type": "offer", "sdp": _OFFER}}),
              _j({"type": "start_receiving", "stream_id": "s1"}),
              _j({"type": "ice_candidate", "candidate": _CANDIDATE}),
              _j({"type": "ice_candidate", "candidate": "a=" + _LINE}),
              _j({"type": "get_available_streams"}), _j({"type": "local_ip", "ip": "1"})],
    "pairing": [_j({"type": "hello", "deliveredUpTo": 3}),
                _j({"type": "send", "to": "B", "payload": {"name": "f.txt", "size": 4}}),
                _j({"type": "delivered", "seq": 2}), _j({"type": "telemetry",
                                                         "event": "ice-connected"}),
                _j({"type": "offer", "sdp": _OFFER}),
                b"appID=3f1c1a6e-8d0b-4c59-9a55-0f1e2d3c4b5a&side=A"],
    "match": [b'2["request-room",{"name":"Ann","roomId":null}]',
              _j(["negotiation-call-offer", {"offer": {"type": "offer", "sdp": _OFFER},
                                             "roomId": "r1", "remoteSocketId": "s2"}]),
              _j(["send-new-ice-candidates", {"to": "s2", "candidate": _CANDIDATE}]),
              _j(["newMessage", {"message": "hi", "roomId": "r1", "remoteSocket": "s2"}]),
              _j(["stop-call"]), b'42["request-room",{"name":"Ann"}]', b"40", b"451-[\"x\"]"],
    "rendezvous": [b'{"code": "0421"}', b'{"code": " 042117 "}', b'{"code": 421}', b"{}",
                   b'{"code": "\\u0661\\u0662\\u0663\\u0664"}'],
    "sdp": [_j({"type": "offer", "sdp": _OFFER}), _OFFER.encode(), _j(_CANDIDATE),
            _j({"type": "rollback"})],
    "rtp": [bytes.fromhex("80600001000000640000abcd" "9080003001" "9d012a" "8002e001"),
            bytes.fromhex("80e1000200000064000000017c85b8000000"),
            bytes.fromhex("806f00030000007800000001") + b"\xfc\xff\xfe"],
    "rtcp": [bytes.fromhex("81c900070000000100000002000000000000000000000000000000000000"),
             bytes.fromhex("81ce00020000000100000002"),
             bytes.fromhex("80c8000600000001000000000000000000000000000000000000000000")],
    "calls": [_j({"type": "join", "room": "standup", "topology": "sfu",
                  "access_token": "x.y.z", "display_name": "Ann", "metadata": {"a": 1}}),
              _j({"type": "sfu_offer", "sdp": {"type": "offer", "sdp": _OFFER},
                  "publish": {"0": "camera"}}),
              _j({"type": "sfu_candidate", "candidate": _CANDIDATE}),
              _j({"type": "subscribe", "track_id": "t1"}),
              _j({"type": "set_quality", "track_id": "t1", "quality": "high"}),
              _j({"type": "media_state", "audio": False, "video": True}),
              _j({"type": "mute", "user": "bob", "kind": "audio"}),
              _j({"type": "record", "action": "start"}), _j({"type": "chat", "text": "hi"}),
              _j({"type": "webrtc.offer", "sdp": {"type": "offer", "sdp": _OFFER},
                  "metadata": {"peer_id": "bob"}}),
              _j({"type": "webrtc.ice_candidate", "candidate": _CANDIDATE, "peer_id": "b"})],
    "token": [b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln",
              _j({"sub": "alice", "room": "r", "exp": 2000, "nbf": 900,
                  "grants": {"publish": True, "record": False}, "name": "Alice"}),
              _j({"sub": "alice", "room": "r", "exp": "soon"})],
    "sfu_rtp": [bytes.fromhex("90600001000000640000abcd" "bede0002" "10ff2203" "04050600"
                              "9d012a"),
                bytes.fromhex("90600001000000640000abcd" "10000002" "01020304" "02010900"),
                bytes.fromhex("a06f00030000007800000001") + b"\xfc\xff\x02"],
    "sfu_sdp": [_OFFER.encode(), _OFFER.replace("audio 9", "video 9").replace(
        "opus/48000/2", "VP8/90000").encode() + b"a=extmap:4 urn:ietf:params:rtp-hdrext:"
        b"sdes:mid\r\na=rid:h send\r\na=simulcast:send h;f\r\n"],
    "simulcast": [_simulcast_seed(i) for i in range(3)]
                 + [(Path(__file__).parents[1] / "media" / "chromium_simulcast_offer.sdp")
                    .read_bytes()],
    "head": [b"\x10GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade"
             b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
             b"\r\n\r\n",
             b"\x00GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
             b"\x03GET http://h:1/ws?appID=x&side=A HTTP/1.1\nHost: x\n\n"],
}
