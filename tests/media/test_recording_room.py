"""A room recording fed real encoded media, read back with PyAV.

Packets come from aiortc's encoders (VP8, H.264, Opus) and libvpx-vp9, through
a network that loses and reorders them, into a :class:`RoomRecording` on a
fake clock. Each file must decode without an error, hold exactly the frames a
receiver could decode (byte for byte the sender's: nothing is transcoded), on
the sender's RTP time line, and agree with the manifest.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rtchub.media.recording import RecordingState, RecordingStatus, RoomRecording, TrackStatus
from tests.media.recsupport import (
    AudioSender,
    FakeClock,
    Network,
    Probe,
    Sent,
    Session,
    Stream,
    VideoSender,
    expected_frames,
    probe,
    rng,
    same_frame,
)

WALL = 1_760_000_000.0  # 2025-10-09T08:53:20Z
CONTAINER = {"VP8": "vp8", "VP9": "vp9", "H264": "h264"}


def recording(tmp_path: Path, clock: FakeClock, room: str = "standup") -> RoomRecording:
    return RoomRecording(room, tmp_path / "recordings", clock=clock, wall=lambda: WALL)


def track(status: RecordingStatus, track_id: str) -> TrackStatus:
    return next(t for t in status.tracks if t.track_id == track_id)


def span(entry: TrackStatus) -> float:
    """How much of the recording a track's file covers, by the manifest's offsets."""
    assert entry.start_offset is not None and entry.end_offset is not None
    return entry.end_offset - entry.start_offset


def read(status: RecordingStatus, track_id: str) -> Probe:
    assert status.directory is not None
    entry = track(status, track_id)
    assert entry.file is not None, f"{track_id} has no file"
    return probe(status.directory / entry.file)


def assert_holds(result: Probe, codec: str, frames: list[Sent], clock_rate: int) -> None:
    """The file holds exactly ``frames``, byte for byte, on their RTP time line."""
    assert result.errors == []
    assert len(result.packets) == len(frames)
    for written, sent in zip(result.packets, frames, strict=True):
        assert same_frame(codec, written, sent.frame)
    first = frames[0].timestamp
    ms = 1000 / clock_rate
    expected = [round(((s.timestamp - first) % (1 << 32)) * ms) for s in frames]
    assert [abs(a - b) <= 1 for a, b in zip(result.pts, expected, strict=True)] == [True] * len(
        frames)
    assert result.pts == sorted(set(result.pts))  # strictly increasing
    assert result.keyframes[0]


def assert_manifest_matches(status: RecordingStatus) -> None:
    assert status.manifest_path is not None
    on_disk = json.loads(status.manifest_path.read_text())
    assert on_disk == json.loads(status.manifest_json())
    assert on_disk["state"] == status.state.value


@pytest.mark.parametrize("codec", ["VP8", "VP9", "H264"])
async def test_each_codec_is_written_as_it_was_sent(tmp_path: Path, codec: str) -> None:
    clock = FakeClock()
    rec = recording(tmp_path, clock)
    session = Session(clock)
    video = session.add(Stream(VideoSender(codec)))
    audio = session.add(Stream(AudioSender()))
    for stream, track_id in ((video, "cam"), (audio, "mic")):
        rec.add_track(track_id, participant="alice", codec=stream.sender.mime_type,
                      source=stream.feed)
    started = await rec.start()
    assert started.state is RecordingState.RECORDING
    await session.run_until(3.0)
    status = await rec.stop()

    assert status.state is RecordingState.STOPPED and status.reason is None
    assert status.directory == tmp_path / "recordings" / "standup_20251009T085320Z"
    cam, mic = track(status, "cam"), track(status, "mic")
    extension = "mkv" if codec == "H264" else "webm"
    assert cam.file == f"standup_20251009T085320Z_01_alice_video.{extension}"
    assert mic.file == "standup_20251009T085320Z_02_alice_audio.webm"
    assert (cam.kind, cam.codec, cam.width, cam.height) == ("video", codec, 160, 96)
    assert (mic.kind, mic.codec) == ("audio", "opus")
    assert cam.frames == 90 and mic.frames == 150
    assert cam.packets_lost == mic.packets_lost == cam.frames_dropped == 0

    video_file, audio_file = read(status, "cam"), read(status, "mic")
    assert (video_file.codec, video_file.width, video_file.height) == (CONTAINER[codec], 160, 96)
    assert video_file.decoded == 90
    assert_holds(video_file, codec, video.sender.sent, 90000)
    assert audio_file.codec == "opus"
    assert_holds(audio_file, "opus", audio.sender.sent, 48000)
    assert abs(audio_file.samples - 150 * 960) <= 960  # the encoder's pre-skip aside
    # both began with the recording and ran to its end: the manifest lines them up
    for entry, result in ((cam, video_file), (mic, audio_file)):
        assert entry.start_offset == pytest.approx(0.0, abs=1e-9)
        assert entry.end_offset == pytest.approx(3.0)
        assert result.duration == pytest.approx(span(entry), abs=0.05)
    assert_manifest_matches(status)


@pytest.mark.parametrize("codec", ["VP8", "VP9", "H264"])
async def test_loss_and_reordering_keep_exactly_the_decodable_frames(tmp_path: Path,
                                                                     codec: str) -> None:
    clock = FakeClock()
    rec = recording(tmp_path, clock)
    session = Session(clock)
    chance = rng(7)
    lossy = Network(lose=lambda sent, i: chance.random() < 0.03, reorder=4)
    video = session.add(Stream(VideoSender(codec, width=320, height=240), lossy))
    audio_loss = rng(8)
    audio = session.add(Stream(AudioSender(), Network(
        lose=lambda s, i: audio_loss.random() < 0.05, reorder=3)))
    for stream, track_id in ((video, "cam"), (audio, "mic")):
        rec.add_track(track_id, participant="bob", codec=stream.sender.mime_type,
                      source=stream.feed)
    await rec.start()
    await session.run_until(6.0)
    session.drain()
    status = await rec.stop()

    kept_video = expected_frames(video.sender, video.network, video=True)
    kept_audio = expected_frames(audio.sender, audio.network, video=False)
    assert len(kept_video) < len(video.sender.sent)  # the loss did cost frames
    assert len(kept_audio) < len(audio.sender.sent)
    video_file, audio_file = read(status, "cam"), read(status, "mic")
    assert_holds(video_file, codec, kept_video, 90000)
    assert video_file.decoded == len(kept_video)
    assert_holds(audio_file, "opus", kept_audio, 48000)
    cam = track(status, "cam")
    assert cam.frames == len(kept_video)
    assert cam.packets_lost == sum(1 for s in video.sender.sent for i in range(len(s.packets))
                                   if (s.index, i) not in video.network.delivered)
    assert cam.keyframe_requests == video.feed.requests >= 1
    # every key frame after the first was one the recording asked for
    assert sum(s.keyframe for s in video.sender.sent) == 1 + video.feed.requests
    assert track(status, "mic").keyframe_requests == audio.feed.requests == 0


async def test_a_recording_that_starts_mid_stream_waits_for_the_key_frame_it_asks_for(
        tmp_path: Path) -> None:
    clock = FakeClock()
    rec = recording(tmp_path, clock)
    session = Session(clock)
    sender = VideoSender("VP8")
    stream = session.add(Stream(sender))
    await session.run_until(1.0)  # a second of video before anyone records
    rec.add_track("cam", participant="carol", codec="video/VP8", source=stream.feed)
    await rec.start()
    await session.run_until(2.0)
    assert stream.feed.requests == 1
    status = await rec.stop()

    first_recorded = next(s for s in sender.sent if s.index > 0 and s.keyframe)
    kept = [s for s in sender.sent if s.index >= first_recorded.index]
    # asked at the first packet it saw (a delta frame's), so the very next frame is the key
    assert stream.feed.requested_at == [31] and first_recorded.index == 31
    entry = track(status, "cam")
    assert entry.start_offset == pytest.approx(first_recorded.index / 30 - 1.0, abs=0.001)
    assert_holds(read(status, "cam"), "VP8", kept, 90000)


async def test_retransmissions_and_padding_are_not_media(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = recording(tmp_path, clock)
    sender = VideoSender("VP8")
    stream = Stream(sender)
    rec.add_track("cam", participant="fay", codec="video/VP8", source=stream.feed,
                  payload_type=96)
    await rec.start()
    for index in range(60):
        clock.now = 500.0 + index / 30
        sent = sender.next()
        for packet in sent.packets:
            stream.feed.deliver(packet)
            stream.feed.deliver(sender.rtx(packet))  # a retransmission nobody asked for
        stream.feed.deliver(sender.padding(sent.timestamp))  # probing between frames
        await asyncio.sleep(0)
    status = await rec.stop()
    entry = track(status, "cam")
    assert (entry.packets_lost, entry.frames_dropped, entry.keyframe_requests) == (0, 0, 0)
    assert_holds(read(status, "cam"), "VP8", sender.sent, 90000)


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_a_resolution_change_stays_in_the_file_and_decodes(tmp_path: Path,
                                                                 codec: str) -> None:
    clock = FakeClock()
    rec = recording(tmp_path, clock)
    session = Session(clock)
    sender = VideoSender(codec)
    stream = session.add(Stream(sender))
    rec.add_track("cam", participant="gus", codec=f"video/{codec}", source=stream.feed)
    await rec.start()
    await session.run_until(1.0)
    sender.width, sender.height = 320, 240  # as Chromium ramps up its resolution
    await session.run_until(2.0)
    status = await rec.stop()
    assert track(status, "cam").width == 160  # the header has the first size
    result = read(status, "cam")
    assert_holds(result, codec, sender.sent, 90000)
    assert result.sizes == [(160, 96)] * 30 + [(320, 240)] * 30
    assert result.keyframes[30]  # the encoder restarted with a key frame at the new size


async def test_a_sender_restart_continues_the_file_on_the_arrival_clock(
        tmp_path: Path) -> None:
    clock = FakeClock()
    rec = recording(tmp_path, clock)
    session = Session(clock)
    sender = VideoSender("H264")
    stream = session.add(Stream(sender))
    rec.add_track("cam", participant="dave", codec="video/H264", source=stream.feed)
    await rec.start()
    await session.run_until(1.5)
    before = len(sender.sent)
    sender.restart(ssrc=0x9999, first_seq=123, first_ts=777)
    await session.run_until(3.0)
    status = await rec.stop()

    result = read(status, "cam")
    assert result.errors == []
    assert len(result.packets) == len(sender.sent)  # the restart began with a key frame
    assert all(same_frame("H264", w, s.frame)
               for w, s in zip(result.packets, sender.sent, strict=True))
    step = result.pts[before] - result.pts[before - 1]
    assert 30 <= step <= 36  # one frame later, by the arrival clock
    assert result.pts == sorted(set(result.pts))
