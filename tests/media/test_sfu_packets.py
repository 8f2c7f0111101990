"""The SFU's byte-level RTP and RTCP, checked against aiortc's own parser and builders."""

from __future__ import annotations

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    unpack_remb_fci,
    unwrap_rtx,
)
from hypothesis import given
from hypothesis import strategies as st

from rtchub.media.sfu.rtcp import nack, pli, remb, remb_share
from rtchub.media.sfu.rtp import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    MID_URI,
    ExtensionWriter,
    MalformedPacket,
    RtpHeader,
    abs_send_time,
    audio_level,
    find_extension,
    rtx_wrap,
)

IDS = {MID_URI: 4, AUDIO_LEVEL_URI: 1, ABS_SEND_TIME_URI: 2}


def extension_map() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=i, uri=uri) for uri, i in IDS.items()]))
    return extensions


def aiortc_packet(padding: int = 0, csrcs: int = 0) -> bytes:
    packet = RtpPacket(payload_type=111, marker=1, sequence_number=65535, timestamp=1 << 31,
                       ssrc=0xDEADBEEF, payload=b"opus" * 10)
    packet.csrc = list(range(1, csrcs + 1))
    packet.extensions.mid = "7"
    packet.extensions.audio_level = (True, 42)
    packet.extensions.abs_send_time = 0x123456
    packet.padding_size = padding
    return bytes(packet.serialize(extension_map()))


@pytest.mark.parametrize(("padding", "csrcs"), [(0, 0), (3, 0), (0, 2), (5, 3)])
def test_header_fields_extensions_and_payload_are_found_in_aiortc_packets(
        padding: int, csrcs: int) -> None:
    data = aiortc_packet(padding, csrcs)
    header = RtpHeader.parse(data)
    assert (header.marker, header.payload_type, header.seq, header.timestamp, header.ssrc) == (
        True, 111, 65535, 1 << 31, 0xDEADBEEF)
    assert data[header.payload_start:header.payload_end] == b"opus" * 10
    ext = (data, header.ext_profile, header.ext_start, header.ext_end)
    assert find_extension(*ext, IDS[MID_URI]) == b"7"
    level = find_extension(*ext, IDS[AUDIO_LEVEL_URI])
    assert level is not None and audio_level(level) == (42, True)
    assert find_extension(*ext, IDS[ABS_SEND_TIME_URI]) == b"\x12\x34\x56"
    assert find_extension(*ext, 9) is None


def test_two_byte_extensions_are_read_too() -> None:
    elements = bytes([3, 2]) + b"ab" + bytes([0, 0]) + bytes([5, 1]) + b"z"  # padding inside
    block = elements + b"\x00" * (-len(elements) % 4)
    data = (bytes([0x90, 96]) + (1).to_bytes(2, "big") + (2).to_bytes(4, "big")
            + (3).to_bytes(4, "big") + b"\x10\x00" + (len(block) // 4).to_bytes(2, "big")
            + block + b"payload")
    header = RtpHeader.parse(data)
    ext = (data, header.ext_profile, header.ext_start, header.ext_end)
    assert find_extension(*ext, 3) == b"ab"
    assert find_extension(*ext, 5) == b"z"
    assert data[header.payload_start:] == b"payload"


@pytest.mark.parametrize("data", [b"", b"\x80" * 11, b"\x40" + b"\x00" * 11,
                                  b"\x90" + b"\x00" * 11,  # extension bit, no extension
                                  b"\xa0" + b"\x00" * 10 + b"\xff"])  # padding past the end
def test_malformed_packets_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedPacket):
        RtpHeader.parse(data)


def test_an_extension_block_written_for_a_receiver_reads_back_in_aiortc() -> None:
    writer = ExtensionWriter(IDS[MID_URI], "12", IDS[ABS_SEND_TIME_URI])
    block = writer.block(abs_send_time(1000.5))
    data = (bytes([0x90, 96]) + (9).to_bytes(2, "big") + (10).to_bytes(4, "big")
            + (11).to_bytes(4, "big") + block + b"frame")
    packet = RtpPacket.parse(data, extension_map())
    assert packet.extensions.mid == "12"
    assert packet.extensions.abs_send_time == abs_send_time(1000.5) == int(1000.5 * 2**18) \
        & 0xFFFFFF
    assert packet.payload == b"frame"
    assert ExtensionWriter().empty
    assert ExtensionWriter(None, "1", None).empty
    with pytest.raises(ValueError, match="does not fit"):
        ExtensionWriter(15, "1", None)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 127),
       st.binary(min_size=1, max_size=40), st.booleans())
def test_rtx_wrap_is_what_aiortc_unwraps(seq: int, rtx_seq: int, pt: int, payload: bytes,
                                         with_ext: bool) -> None:
    block = ExtensionWriter(IDS[MID_URI], "3", IDS[ABS_SEND_TIME_URI]).block(77) if with_ext \
        else b""
    original = (bytes([0x90 if with_ext else 0x80, 0x80 | 100]) + seq.to_bytes(2, "big")
                + (5000).to_bytes(4, "big") + (0xABCD).to_bytes(4, "big") + block + payload)
    rtx = rtx_wrap(original, pt, rtx_seq, 0x1234)
    parsed = RtpPacket.parse(rtx, extension_map())
    assert (parsed.payload_type, parsed.sequence_number, parsed.ssrc, parsed.marker,
            parsed.timestamp) == (pt, rtx_seq, 0x1234, 1, 5000)
    unwrapped = unwrap_rtx(parsed, payload_type=100, ssrc=0xABCD)
    assert (unwrapped.sequence_number, unwrapped.payload) == (seq, payload)
    if with_ext:
        assert parsed.extensions.mid == "3"


def test_pli_nack_and_remb_parse_in_aiortc() -> None:
    [packet] = RtcpPacket.parse(pli(1, 2))
    assert isinstance(packet, RtcpPsfbPacket)
    assert (packet.fmt, packet.ssrc, packet.media_ssrc) == (RTCP_PSFB_PLI, 1, 2)
    lost = [65530, 65531, 65535, 0, 3, 20, 40, 41]
    [packet] = RtcpPacket.parse(nack(1, 2, lost))
    assert isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK
    assert sorted(packet.lost) == sorted(lost)
    for bitrate in (0, 100_000, 2_500_000, 123_456_789):
        [packet] = RtcpPacket.parse(remb(9, bitrate, [7, 8]))
        assert isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP
        got, ssrcs = unpack_remb_fci(packet.fci)
        assert ssrcs == [7, 8]
        assert bitrate - (bitrate >> 17) <= got <= bitrate  # 18-bit mantissa
    with pytest.raises(ValueError):
        nack(1, 2, [])
    with pytest.raises(ValueError):
        remb(1, 100, [])
    assert remb_share(3_000_000, [1, 2, 3]) == 1_000_000
    assert remb_share(500_000, []) == 500_000
    # a retransmission stream the receiver names is not a stream of its own: aiortc lists
    # the RTX SSRC once a retransmission arrived, which halved the share from then on
    assert remb_share(400_000, [1, 2], repairs=(2,)) == 400_000
    assert remb_share(400_000, [1, 2, 3, 4], repairs=(2, None)) == 133_333
