"""A room recording's life: pause and resume, participants joining and leaving, checked
state transitions, bad output paths, and the bounded file backlog."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from rtchub.errors import CapacityError, CodecNotSupported, Conflict, TrackNotFound
from rtchub.media.recording import (
    RecordingLimits,
    RecordingOutputError,
    RecordingState,
    RecordingStateError,
    RoomRecording,
    TrackAlreadyRecorded,
)
from rtchub.media.recording.codecs import recorded_codec
from rtchub.media.recording.files import StreamInfo, TimedFrame
from rtchub.media.recording.track import TrackRecorder
from rtchub.media.recording.worker import FileWorker
from tests.media.recsupport import AudioSender, FakeClock, Session, Stream, VideoSender, probe
from tests.media.test_recording_room import WALL, assert_holds, read, recording, span, track


async def test_a_pause_leaves_a_gap_the_manifest_describes(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = recording(tmp_path, clock)
    session = Session(clock)
    video = session.add(Stream(VideoSender("VP8")))
    audio = session.add(Stream(AudioSender()))
    rec.add_track("cam", participant="erin", codec="video/VP8", source=video.feed)
    rec.add_track("mic", participant="erin", codec="audio/opus", source=audio.feed)
    await rec.start()
    await session.run_until(1.0)
    paused = await rec.pause()
    assert paused.state is RecordingState.PAUSED
    await rec.sync()  # the manifest on disk says so already
    assert paused.manifest_path is not None
    on_disk = json.loads(paused.manifest_path.read_text())
    assert (on_disk["state"], on_disk["pauses"]) == ("paused", [{"start": 1.0, "end": None}])
    await session.run_until(2.0)
    await rec.resume()
    await session.run_until(3.0)
    status = await rec.stop()

    manifest = status.manifest()
    assert manifest["pauses"] == [{"start": 1.0, "end": 2.0}]
    for entry in manifest["tracks"]:
        assert entry["pauses"] == [{"start": 1.0, "end": 2.0}]
    resumed_at = video.feed.requested_at[0]  # the resume asked for a key frame
    assert resumed_at >= 60
    kept_video = video.sender.sent[:30] + video.sender.sent[resumed_at:]
    assert video.sender.sent[resumed_at].keyframe
    video_file = read(status, "cam")
    assert_holds(video_file, "VP8", kept_video, 90000)  # the gap is in RTP time
    assert video_file.pts[30] - video_file.pts[29] >= 1000
    audio_file = read(status, "mic")
    kept_audio = audio.sender.sent[:50] + audio.sender.sent[100:]
    assert_holds(audio_file, "opus", kept_audio, 48000)
    assert audio_file.pts[50] - audio_file.pts[49] == 1020  # 1 s of pause after 20 ms
    for track_id, result in (("cam", video_file), ("mic", audio_file)):
        entry = track(status, track_id)
        assert entry.frames_dropped == 0
        assert result.duration == pytest.approx(span(entry), abs=0.05)


async def test_participants_join_leave_and_rejoin_while_recording(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = recording(tmp_path, clock, room="all-hands")
    session = Session(clock)
    alice = session.add(Stream(VideoSender("VP8")))
    bob_cam = session.add(Stream(VideoSender("H264", ssrc=0x4242), stop=2.0))
    bob_mic = session.add(Stream(AudioSender(ssrc=0x4343), stop=2.0))
    rec.add_track("alice-cam", participant="alice", codec="video/VP8", source=alice.feed)
    await rec.start()
    await session.run_until(1.0)  # bob has been sending; the recording takes him now
    rec.add_track("bob-cam", participant="bob", codec="video/H264", source=bob_cam.feed)
    rec.add_track("bob-mic", participant="bob", codec="audio/opus", source=bob_mic.feed)
    with pytest.raises(TrackAlreadyRecorded, match="'bob-cam' is already recorded"):
        rec.add_track("bob-cam", participant="bob", codec="video/H264", source=bob_cam.feed)
    await session.run_until(2.0)
    rec.remove_track("bob-cam")
    rec.remove_track("bob-mic")
    with pytest.raises(TrackNotFound, match="'bob-cam' is not recorded"):
        rec.remove_track("bob-cam")
    await session.run_until(2.5)
    back = session.add(Stream(VideoSender("H264", ssrc=0x5151, first_seq=7), start=2.5))
    rec.add_track("bob-cam", participant="bob", codec="video/H264", source=back.feed)
    await session.run_until(3.0)
    status = await rec.stop()

    assert [(t.track_id, t.state) for t in status.tracks] == [
        ("alice-cam", "ended"), ("bob-cam", "ended"), ("bob-mic", "ended"),
        ("bob-cam", "ended")]
    files = [t.file for t in status.tracks]
    assert files[1] == "all-hands_20251009T085320Z_02_bob_video.mkv"
    assert files[3] == "all-hands_20251009T085320Z_04_bob_video.mkv"
    first_cam, mic, second_cam = status.tracks[1], status.tracks[2], status.tracks[3]
    keyframe_at = bob_cam.feed.requested_at[0]
    assert first_cam.start_offset == pytest.approx(keyframe_at / 30, abs=0.001)
    assert first_cam.start_offset is not None and 1.0 < first_cam.start_offset < 1.3
    assert (mic.start_offset, first_cam.end_offset, mic.end_offset) == pytest.approx(
        (1.0, 2.0, 2.0), abs=1e-9)
    assert (second_cam.start_offset, second_cam.end_offset) == pytest.approx((2.5, 3.0),
                                                                             abs=1e-9)
    assert back.feed.requests == 0  # a new sender starts with a key frame
    assert_holds(read(status, "bob-mic"), "opus", bob_mic.sender.sent[50:100], 48000)
    assert status.directory is not None
    first_file = probe(status.directory / (first_cam.file or ""))
    assert_holds(first_file, "H264", bob_cam.sender.sent[keyframe_at:60], 90000)
    second_file = probe(status.directory / (second_cam.file or ""))
    assert_holds(second_file, "H264", back.sender.sent, 90000)
    for entry, result in ((first_cam, first_file), (second_cam, second_file)):
        assert result.duration == pytest.approx(span(entry), abs=0.05)


async def test_transitions_are_checked_and_say_what_was_expected(tmp_path: Path) -> None:
    rec = recording(tmp_path, FakeClock(), room="r")
    assert rec.state is RecordingState.IDLE
    for action, expected in (("pause", "recording"), ("resume", "paused"),
                             ("stop", "recording or paused")):
        with pytest.raises(RecordingStateError,
                           match=rf"cannot {action} the recording of room 'r': expected "
                                 rf"{expected}, got idle"):
            await getattr(rec, action)()
    await rec.start()
    with pytest.raises(RecordingStateError, match=r"cannot start .*expected idle, got recording"):
        await rec.start()
    with pytest.raises(RecordingStateError, match="expected paused, got recording"):
        await rec.resume()
    await rec.pause()
    with pytest.raises(RecordingStateError, match="expected recording, got paused"):
        await rec.pause()
    stopped = await rec.stop()
    assert stopped.state is RecordingState.STOPPED
    with pytest.raises(RecordingStateError, match="expected recording or paused, got stopped"):
        await rec.stop()
    with pytest.raises(RecordingStateError, match=r"cannot add a track to .*got stopped"):
        rec.add_track("t", participant="p", codec="audio/opus", source=None)  # type: ignore
    err = RecordingStateError("x")
    assert isinstance(err, Conflict) and err.code == "recording_state"
    assert (await rec.close()).state is RecordingState.STOPPED  # close is always safe


async def test_tracks_added_before_the_start_and_codecs_refused(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = RoomRecording("r", tmp_path, clock=clock, wall=lambda: WALL,
                        limits=RecordingLimits(max_tracks=2))
    session = Session(clock)
    stream = session.add(Stream(AudioSender()))
    with pytest.raises(CodecNotSupported, match="cannot record 'audio/PCMU'"):
        rec.add_track("t", participant="p", codec="audio/PCMU", source=stream.feed)
    rec.add_track("gone", participant="p", codec="audio/opus", source=stream.feed)
    rec.add_track("t", participant="p", codec="audio/opus", source=stream.feed)
    with pytest.raises(CapacityError, match="already has 2 tracks"):
        rec.add_track("u", participant="p", codec="audio/opus", source=stream.feed)
    rec.remove_track("gone")  # before the start: as if never added
    other = session.add(Stream(AudioSender(ssrc=77)))
    rec.add_track("u", participant="q", codec="audio/opus", source=other.feed)
    await session.run_until(0.5)
    assert stream.feed.listeners == {}  # nothing is taken before the start
    await rec.start()
    await session.run_until(1.0)
    status = await rec.stop()
    assert [(t.track_id, t.frames) for t in status.tracks] == [("t", 25), ("u", 25)]
    assert [t.file for t in status.tracks] == ["r_20251009T085320Z_02_p_audio.webm",
                                               "r_20251009T085320Z_03_q_audio.webm"]
    assert stream.feed.listeners == {}  # and nothing after the stop


async def test_while_starting(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = recording(tmp_path, clock, room="r")
    session = Session(clock)
    stream = session.add(Stream(AudioSender()))
    starting = asyncio.create_task(rec.start())
    await asyncio.sleep(0)  # start() runs to its first wait: the file thread
    assert rec.state is RecordingState.STARTING
    with pytest.raises(RecordingStateError, match="expected idle, got starting"):
        await rec.start()
    with pytest.raises(RecordingStateError, match="expected recording, got starting"):
        await rec.pause()
    rec.add_track("t", participant="p", codec="audio/opus", source=stream.feed)
    assert stream.feed.listeners == {}
    status = await rec.close()  # waits for the start, then stops
    assert starting.done() and starting.exception() is None
    assert status.state is RecordingState.STOPPED
    assert [t.track_id for t in status.tracks] == ["t"]


async def test_the_same_room_and_second_get_separate_directories(tmp_path: Path) -> None:
    first, second = recording(tmp_path, FakeClock()), recording(tmp_path, FakeClock())
    a, b = await first.start(), await second.start()
    assert a.directory is not None and b.directory is not None
    assert b.directory.name == a.directory.name + "-2"
    await first.stop()
    await second.stop()


@pytest.mark.parametrize("layout", ["file", "under-a-file"])
async def test_an_output_path_that_cannot_hold_recordings_is_refused(tmp_path: Path,
                                                                      layout: str) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    output = blocker if layout == "file" else blocker / "recordings"
    rec = RoomRecording("r", output, clock=FakeClock(), wall=lambda: WALL)
    with pytest.raises(RecordingOutputError, match=r"cannot record room 'r' in '.*not-a-dir.*"
                                                   r"Not a directory"):
        await rec.start()
    status = await rec.close()
    assert status.state is RecordingState.FAILED
    assert status.reason is not None and "Not a directory" in status.reason
    assert RecordingOutputError("x").code == "recording_output"


# -- the bounded backlog ---------------------------------------------------------------


async def test_the_file_thread_runs_jobs_in_order_and_bounds_its_backlog() -> None:
    ran: list[int] = []
    failures: list[tuple[str, BaseException]] = []
    worker = FileWorker("test-worker", max_jobs=3, max_bytes=1000,
                        on_failure=lambda key, exc: failures.append((key, exc)))
    worker.start()
    gate = threading.Event()
    assert worker.submit("a", lambda: gate.wait(10), 0)
    assert worker.submit("a", lambda: ran.append(1), 400)
    assert worker.submit("a", lambda: ran.append(2), 400)
    assert not worker.submit("a", lambda: ran.append(3), 0)  # three jobs waiting
    assert not worker.submit("b", lambda: ran.append(4), 0)
    assert worker.refused == 2
    assert worker.submit("ctl", lambda: ran.append(5), control=True)  # never refused

    def broken() -> None:
        raise OSError(28, "No space left on device")

    worker.submit("c", broken, control=True)
    gate.set()
    assert await asyncio.wait_for(worker.call("x", lambda: 42), 10) == 42
    assert ran == [1, 2, 5]
    assert [(key, str(exc)) for key, exc in failures] == [("c", "[Errno 28] No space left on "
                                                                "device")]
    assert worker.backlog == (0, 0)
    assert worker.submit("a", lambda: ran.append(6), 1000)
    await worker.close()
    await worker.close()
    assert ran == [1, 2, 5, 6]
    assert not worker.submit("a", lambda: None)


class _Disk:
    """A frame sink with room for ``space`` frames at a time (a disk that falls behind)."""

    def __init__(self) -> None:
        self.space = 10**6
        self.frames: list[TimedFrame] = []
        self.info: StreamInfo | None = None

    def open(self, info: StreamInfo) -> bool:
        self.info = info
        return True

    def write(self, frame: TimedFrame) -> bool:
        if self.space <= 0:
            return False
        self.space -= 1
        self.frames.append(frame)
        return True

    def close(self) -> None:
        pass


async def test_frames_the_disk_has_no_room_for_are_dropped_and_video_waits_for_a_key_frame(
        ) -> None:
    clock = FakeClock()
    session = Session(clock)
    stream = session.add(Stream(VideoSender("VP8")))
    disk = _Disk()
    asked: list[int] = []

    def ask() -> None:
        asked.append(len(stream.sender.sent))
        stream.sender.keyframe_wanted = True

    recorder = TrackRecorder(recorded_codec("video/VP8"), disk,
                             RecordingLimits(reorder_delay=0.0, keyframe_interval=0.5), clock,
                             ask)
    stream.feed.listen(1, recorder.feed)
    await session.run_until(0.5)
    disk.space = 0  # the key frame asked for now is refused too
    await session.run_until(0.6)
    disk.space = 10**6
    await session.run_until(1.5)
    sent = stream.sender.sent
    assert recorder.refused >= 2 and recorder.frames_dropped == recorder.refused
    assert asked == [16, 31]  # at the first refusal, then half a second later
    assert [f.data for f in disk.frames] == [s.frame for s in sent[:15]] + [
        s.frame for s in sent[31:]]
    assert disk.info is not None and (disk.info.width, disk.info.height) == (160, 96)


async def test_a_sender_that_catches_up_does_not_shift_its_file_late() -> None:
    clock = FakeClock(100.0)
    sender = AudioSender()
    disk = _Disk()
    recorder = TrackRecorder(recorded_codec("audio/opus"), disk,
                             RecordingLimits(reorder_delay=0.0), clock, lambda: None)
    for index in range(20):
        # the first ten packets come 150 ms late, then the sender has caught up
        clock.now = 100.0 + index * 0.02 + (0.15 if index < 10 else 0.0)
        for packet in sender.next().packets:
            recorder.feed(packet)
    assert recorder.started_at == pytest.approx(100.0)
    assert [f.pts for f in disk.frames] == [20 * i for i in range(20)]
