"""Call rooms from Python: seed 003's API in Python naming (docs/calls.md).

    from rtchub.calls import CallsConfig, CallsExtension

Every sentinel error of seed 003 is an exception of :mod:`rtchub.errors`
(``RoomNotFound``, ``RoomFull``, ``PeerAlreadyExists``, ``NotInRoom``,
``TrackNotFound``, ``CodecNotSupported``, ``InvalidSDP``, ``SignalingTimeout``,
``ConnectionFailed``, ``Unauthorized``, ``SFUNotEnabled``, ...); they are re-exported here.
"""

from rtchub.errors import (
    CodecNotSupported,
    ConnectionFailed,
    InvalidQuality,
    InvalidSDP,
    NotInRoom,
    PeerAlreadyExists,
    PeerNotFound,
    RoomFull,
    RoomNotFound,
    SFUNotEnabled,
    SignalingFailed,
    SignalingTimeout,
    TrackNotFound,
    Unauthorized,
)
from rtchub.features.calls.api import (
    AudioConfig,
    CallRoom,
    CallsConfig,
    CallsExtension,
    IceCandidate,
    LocalPeer,
    Participant,
    PeerConnection,
    Recorder,
    ServerPeer,
    SessionDescription,
    SfuRouter,
    SignalingManager,
    Track,
    TrackInfo,
    TrackReceiver,
    TurnServer,
    VideoConfig,
    gather_on,
)
from rtchub.features.calls.auth import mint_join_token, verify_join_token
from rtchub.features.calls.quality import QualityMonitor
from rtchub.features.calls.quality_rules import ConnectionQuality, QualityThresholds
from rtchub.media.sfu import DataChannel

__all__ = ["AudioConfig", "CallRoom", "CallsConfig", "CallsExtension", "CodecNotSupported",
           "ConnectionFailed", "ConnectionQuality", "DataChannel", "IceCandidate",
           "InvalidQuality", "InvalidSDP", "LocalPeer", "NotInRoom", "Participant",
           "PeerAlreadyExists", "PeerConnection", "PeerNotFound", "QualityMonitor",
           "QualityThresholds", "Recorder", "RoomFull", "RoomNotFound", "SFUNotEnabled",
           "ServerPeer", "SessionDescription", "SfuRouter", "SignalingFailed", "SignalingManager",
           "SignalingTimeout", "Track", "TrackInfo", "TrackNotFound", "TrackReceiver",
           "TurnServer", "Unauthorized", "VideoConfig", "gather_on", "mint_join_token",
           "verify_join_token"]
