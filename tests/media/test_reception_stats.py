"""The SFU's reception statistics in aiortc's receiver-report table.

Found by benchmarks/sfu_soak.py: an SSRC bound from the SDP before its first packet sat in
the table with no sequence numbers; aiortc's RTCP loop then raised TypeError building a
report, its task ended without saying so, and ``RTCRtpReceiver.stop()`` (so ``pc.close()``,
so a participant's leave) waited forever: the connection and its peer were never freed.
"""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket

from rtchub.media.aiortc_adapter import ReceptionStats
from rtchub.media.aiortc_adapter.receiver import RECEIVER_STREAMS


def receiver_reports(table: dict[int, object]) -> bytes:
    """What aiortc's RTCP loop builds from the table each tick (RtcpRrPacket of every
    entry's fraction lost, cumulative loss, highest sequence number and jitter)."""
    reports = [RtcpReceiverInfo(ssrc=ssrc, fraction_lost=s.fraction_lost,  # type: ignore[attr-defined]
                                packets_lost=s.packets_lost,  # type: ignore[attr-defined]
                                highest_sequence=s.max_seq,  # type: ignore[attr-defined]
                                jitter=s.jitter, lsr=0, dlsr=0)  # type: ignore[attr-defined]
               for ssrc, s in table.items()]
    return bytes(RtcpRrPacket(ssrc=1, reports=reports))


async def test_an_ssrc_enters_the_report_table_with_its_first_packet() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        table: dict[int, object] = getattr(receiver, RECEIVER_STREAMS)
        stats = ReceptionStats(receiver, 1234, 90_000)
        assert table == {}
        receiver_reports(table)                  # the RTCP loop's tick before any packet
        stats.add(100, 3000)
        stats.add(102, 6000)
        assert list(table) == [1234]
        assert stats.packets_received == 2 and stats.packets_lost == 1
        assert len(receiver_reports(table)) == 8 + 24
        again = ReceptionStats(receiver, 1234, 90_000)   # a rebind keeps the counts
        again.add(103, 9000)
        assert stats.packets_received == 3
        again.remove()
        assert table == {}
    finally:
        await pc.close()
