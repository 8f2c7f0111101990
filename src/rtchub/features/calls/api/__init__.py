"""Seed 003's Python API (call rooms, peers, data channels, signaling, SFU router,
recorder), published as :mod:`rtchub.calls`; docs/calls.md shows it in use."""

from rtchub.features.calls.api.config import AudioConfig, CallsConfig, TurnServer, VideoConfig
from rtchub.features.calls.api.extension import CallsExtension, SignalingManager
from rtchub.features.calls.api.localpeer import LocalPeer, gather_on
from rtchub.features.calls.api.peer import (
    IceCandidate,
    PeerConnection,
    ServerPeer,
    SessionDescription,
    Track,
    TrackReceiver,
)
from rtchub.features.calls.api.room import CallRoom, Participant, Recorder, SfuRouter, TrackInfo

__all__ = ["AudioConfig", "CallRoom", "CallsConfig", "CallsExtension", "IceCandidate",
           "LocalPeer", "Participant", "PeerConnection", "Recorder", "ServerPeer",
           "SessionDescription", "SfuRouter", "SignalingManager", "Track", "TrackInfo",
           "TrackReceiver", "TurnServer", "VideoConfig", "gather_on"]
