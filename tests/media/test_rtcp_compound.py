"""Reading compound RTCP: what aiortc and the SFU's own builders write reads back."""

from __future__ import annotations

import pytest
from aiortc.rtp import (
    RtcpByePacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
)

from rtchub.media.rtcp_compound import (
    Nack,
    ReceptionReport,
    Remb,
    RtcpError,
    SenderReport,
    read_compound,
)
from rtchub.media.sfu.rtcp import nack, pli, remb

BLOCK = RtcpReceiverInfo(ssrc=0xAABBCCDD, fraction_lost=12, packets_lost=-3,
                         highest_sequence=70_123, jitter=456, lsr=0x12345678, dlsr=6553)


def test_a_browser_like_compound_reads_whole() -> None:
    sr = RtcpSrPacket(ssrc=7, sender_info=RtcpSenderInfo(
        ntp_timestamp=0x0102030405060708, rtp_timestamp=90_000, packet_count=10,
        octet_count=1_000), reports=[BLOCK])
    rr = RtcpRrPacket(ssrc=8, reports=[BLOCK, BLOCK])
    sdes = RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=8, items=[(1, b"cname")])])
    data = (bytes(sr) + bytes(rr) + bytes(sdes) + remb(8, 1_234_567, [0xAABBCCDD, 5])
            + nack(8, 0xAABBCCDD, [10, 11, 26, 65535, 3]) + pli(8, 0xAABBCCDD)
            + bytes(RtcpByePacket(sources=[8])))
    out = read_compound(data)
    report = ReceptionReport(7, 0xAABBCCDD, 12, -3, 70_123, 456, 0x12345678, 6553)
    assert out.senders == [SenderReport(7, 0x0102030405060708, 90_000, 10, 1_000)]
    assert out.reports == [report,
                           ReceptionReport(8, *[getattr(report, f) for f in (
                               "ssrc", "fraction_lost", "packets_lost", "highest_sequence",
                               "jitter", "lsr", "dlsr")]),
                           ReceptionReport(8, 0xAABBCCDD, 12, -3, 70_123, 456, 0x12345678,
                                           6553)]
    # REMB's mantissa keeps 18 bits: what the builder wrote, rounded down
    assert out.rembs == [Remb(1_234_567 >> 3 << 3, [0xAABBCCDD, 5])]
    assert len(out.nacks) == 1 and out.nacks[0].media_ssrc == 0xAABBCCDD
    assert sorted(out.nacks[0].lost) == [3, 10, 11, 26, 65535]
    assert out.keyframes == [0xAABBCCDD]


def test_nack_bitmask_wraps_and_fir_names_its_ssrcs() -> None:
    wrapping = bytes([0x81, 205, 0, 3]) + (1).to_bytes(4, "big") + (2).to_bytes(4, "big") \
        + (65534).to_bytes(2, "big") + (0b111).to_bytes(2, "big")  # 65535, 0 and 1 too
    assert read_compound(wrapping).nacks == [Nack(2, [65534, 65535, 0, 1])]
    fir = bytes([0x84, 206, 0, 6]) + (1).to_bytes(4, "big") + bytes(4) \
        + (0x11).to_bytes(4, "big") + bytes([3, 0, 0, 0]) \
        + (0x22).to_bytes(4, "big") + bytes([4, 0, 0, 0])
    assert read_compound(fir).keyframes == [0x11, 0x22]


def test_padding_and_an_app_message_that_is_not_remb() -> None:
    padded = bytes([0xA1, 201, 0, 8]) + (9).to_bytes(4, "big") + bytes(BLOCK)[:24] \
        + bytes([0, 0, 0, 4])
    assert [r.ssrc for r in read_compound(padded).reports] == [0xAABBCCDD]
    app = bytes([0x8F, 206, 0, 4]) + bytes(8) + b"ABCD" + bytes(4)
    assert read_compound(app).rembs == []


@pytest.mark.parametrize("data", [
    bytes([0x40, 201, 0, 1]) + bytes(4),  # version 1
    bytes([0x81, 201, 0, 7]) + bytes(8),  # a length past the end
    bytes([0x82, 201, 0, 7]) + bytes(28),  # two blocks announced, one there
    bytes([0x81, 201, 0, 1]) + bytes(4) + b"\x80\xc9",  # two stray bytes
    bytes([0xA0, 201, 0, 1]) + bytes([0, 0, 0, 9]),  # padding longer than the packet
])
def test_a_compound_that_does_not_hold_together_raises(data: bytes) -> None:
    with pytest.raises(RtcpError):
        read_compound(data)
