"""The SFU's media plane: server-side peers that forward RTP, never decoding it.

What the call feature builds on (docs/sfu-media.md has the whole picture):

- :class:`SfuPeer`: one participant's peer connection with the server, publishing
  any number of tracks and subscribing to any number of others'; negotiation,
  glare, ICE, data channels.
- :class:`PublishedTrack` and :class:`Subscription`: what is published and who
  receives it.
- :class:`SfuMediaConfig`: allowed codecs, bitrate caps, addresses, timing.
- :class:`ActiveSpeakerDetector`: the active speaker from published audio levels.
- :class:`DataChannel`: seed 003's data channel surface.
- :class:`LayerSwitch`: one subscriber's simulcast layer (``Downtrack.layers``):
  ``set_ceiling`` (set_quality), ``set_target`` (adaptive quality); :class:`OneLayer`
  a simulcast track as one stream (recording).

Underneath, per packet: :mod:`.demux` routes by SSRC, :mod:`.uplink` reads the
bytes once, :mod:`.downtrack` rewrites and sends per subscriber; the pure
pieces (:mod:`.rtp`, :mod:`.rtcp`, :mod:`.sdp`, :mod:`.remb`, :mod:`.loss`,
:mod:`.speaker`) do no I/O.
"""

from __future__ import annotations

from rtchub.media.sfu.config import SfuMediaConfig
from rtchub.media.sfu.datachannel import DataChannel
from rtchub.media.sfu.downtrack import Downtrack, LayerSelector
from rtchub.media.sfu.layers import LayerSwitch, OneLayer
from rtchub.media.sfu.peer import OfferSink, SfuPeer
from rtchub.media.sfu.speaker import ActiveSpeakerDetector, SpeakerPolicy
from rtchub.media.sfu.tracks import PublishedTrack, Subscription, SubscriptionState
from rtchub.media.sfu.uplink import InboundPacket, TrackUplink

__all__ = [
    "ActiveSpeakerDetector",
    "DataChannel",
    "Downtrack",
    "InboundPacket",
    "LayerSelector",
    "LayerSwitch",
    "OfferSink",
    "OneLayer",
    "PublishedTrack",
    "SfuMediaConfig",
    "SfuPeer",
    "SpeakerPolicy",
    "Subscription",
    "SubscriptionState",
    "TrackUplink",
]
