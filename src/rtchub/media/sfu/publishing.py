"""The publishing half of a participant's peer: its tracks, their SSRCs, REMB upstream.

After every completed negotiation, :meth:`Publications.apply_section` reads one
media section: a section the client sends on (and the server receives on) is a
:class:`PublishedTrack`, identified by its msid track id; a section that stops
sending, or changes track id, ends the track. The client's SSRCs (and their
RTX pairs) are bound in the demuxer; the negotiated codecs and the audio level
extension id go to the track's uplink.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiortc import RTCPeerConnection

from rtchub.media import aiortc_adapter as adapter
from rtchub.media.fanout import ForwardingStats
from rtchub.media.sfu.config import SfuMediaConfig
from rtchub.media.sfu.demux import Demuxer
from rtchub.media.sfu.rtcp import remb
from rtchub.media.sfu.rtp import AUDIO_LEVEL_URI, MID_URI, RID_URI, RRID_URI
from rtchub.media.sfu.sdp import Section
from rtchub.media.sfu.tracks import PublishedTrack
from rtchub.media.sfu.uplink import TrackUplink

__all__ = ["Publications"]

log = logging.getLogger("rtchub.media")


class Publications:
    """The tracks one participant publishes (by mid) and their packet routing."""

    def __init__(self, participant_id: str, pc: RTCPeerConnection, config: SfuMediaConfig,
                 stats: ForwardingStats, clock: Callable[[], float] = time.monotonic) -> None:
        self._participant_id = participant_id
        self._pc = pc
        self._config = config
        self._stats = stats
        self._clock = clock
        self.demux = Demuxer()
        self.wire: adapter.SrtpWire | None = None
        self.tracks: dict[str, PublishedTrack] = {}  # by mid
        self.on_unpublished: Callable[[PublishedTrack], None] | None = None

    def apply_section(self, client: Section, agreed: Section,
                      server_receives: bool) -> PublishedTrack | None:
        """Publish, keep or end the track of one negotiated section; returns a track
        that is new (for the caller to announce once every section is applied)."""
        if MID_URI in agreed.extensions:
            self.demux.mid_id = agreed.extensions[MID_URI]
        mid = client.mid
        if mid is None:
            return None
        track = self.tracks.get(mid)
        track_id = client.msid[1] if client.msid and client.msid[1] else f"mid-{mid}"
        sending = client.sends and server_receives
        if track is not None and (not sending or track.track_id != track_id):
            log.info("%s: track %s of section %s ends (%s)", self._participant_id,
                     track.track_id, mid, "it stops sending" if not sending
                     else f"the section now carries track {track_id}")
            self.unpublish(track)
            track = None
        if not sending:
            return None
        new = None
        if track is None:
            track = new = self._publish(client, track_id)
            if track is None:
                return None
        track.uplink.set_codecs({c.payload_type: c for c in agreed.codecs})
        track.uplink.audio_level_id = agreed.extensions.get(AUDIO_LEVEL_URI)
        if RID_URI in agreed.extensions:
            self.demux.rid_id = agreed.extensions[RID_URI]
            self.demux.rrid_id = agreed.extensions.get(RRID_URI)
        if client.rids and agreed.rids and self.demux.rid_id is not None:
            # simulcast: each layer's SSRC is learned from its first packets' RID
            track.uplink.set_rids(client.rids)
        elif client.rtx_ssrcs:
            main, rtx = next(iter(client.rtx_ssrcs.items()))
            self.demux.bind(track.uplink, 0, main, rtx)
        elif client.ssrcs:
            self.demux.bind(track.uplink, 0, client.ssrcs[0])
        return new

    def _publish(self, section: Section, track_id: str) -> PublishedTrack | None:
        transceiver = next((t for t in self._pc.getTransceivers() if t.mid == section.mid),
                           None)
        if transceiver is None or self.wire is None or section.mid is None:
            return None
        uplink = TrackUplink(section.kind, self.wire, adapter.sender_ssrcs(transceiver.sender)[0],
                             self._stats, receiver=transceiver.receiver,
                             keyframe_interval=self._config.keyframe_interval,
                             clock=self._clock)
        track = PublishedTrack(self._participant_id, track_id, section.kind, section.mid,
                               section.msid[0] if section.msid else None, uplink)
        self.tracks[section.mid] = track
        self.demux.add_track(section.mid, uplink)
        return track

    def unpublish(self, track: PublishedTrack) -> None:
        """End ``track``: its subscriptions end, its packets are no longer routed."""
        self.tracks.pop(track.mid, None)
        self.demux.remove_track(track.mid)
        track.end()
        if self.on_unpublished is not None:
            self.on_unpublished(track)

    def send_remb(self) -> int | None:
        """One REMB for the client's video tracks: the sum of each track's target (the
        least of its subscribers' estimates, within the configured bitrates).
        Returns the bitrate sent, None when nothing was sent."""
        wire = self.wire
        video = [t for t in self.tracks.values()
                 if t.kind == "video" and t.uplink.layers[0].ssrc is not None]
        transceivers = self._pc.getTransceivers()
        if wire is None or not video or not transceivers:
            return None
        config = self._config
        total = sum(t.uplink.remb_target(config.video_min_bitrate, config.video_max_bitrate,
                                         config.remb_stale_after) for t in video)
        ssrcs = [layer.ssrc for t in video for layer in t.uplink.layers
                 if layer.ssrc is not None]
        sender_ssrc = adapter.sender_ssrcs(transceivers[0].sender)[0]
        return total if wire.send_rtcp(remb(sender_ssrc, total, ssrcs)) else None

    def close(self) -> None:
        """Unpublish everything and stop the wire."""
        for track in list(self.tracks.values()):
            self.unpublish(track)
        if self.wire is not None:
            self.wire.close()
