"""Run by ``test_recording_disk.py`` inside a private mount namespace whose output directory
is a tiny (or read-only) tmpfs: records until the disk is full, prints what happened as JSON.

    python -m tests.media.diskchild OUTPUT_DIR
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from rtchub.media.recording import RecordingOutputError, RecordingState, RoomRecording
from tests.media.recsupport import AudioSender, FakeClock, Session, Stream, VideoSender, probe


async def main(output: Path) -> dict[str, object]:
    clock = FakeClock()
    rec = RoomRecording("full", output, clock=clock, wall=lambda: 1_760_000_000.0)
    session = Session(clock)
    video = session.add(Stream(VideoSender("VP8", width=320, height=240)))
    audio = session.add(Stream(AudioSender()))
    rec.add_track("cam", participant="p", codec="video/VP8", source=video.feed)
    rec.add_track("mic", participant="p", codec="audio/opus", source=audio.feed)
    try:
        await rec.start()
    except RecordingOutputError as exc:
        status = await rec.close()
        return {"start_error": str(exc), "state": status.state.value, "reason": status.reason}
    seconds = 0.0
    while rec.state is RecordingState.RECORDING and seconds < 120:
        seconds += 0.5
        await session.run_until(seconds)
        if rec.state is RecordingState.RECORDING:
            await rec.sync()  # what was queued has reached the disk, or failed
    status = await rec.close()
    assert status.directory is not None
    video_entry = next(t for t in status.tracks if t.track_id == "cam")
    readable = 0
    if video_entry.file is not None:
        readable = probe(status.directory / video_entry.file).decoded
    manifest = json.loads((status.directory / "manifest.json").read_text())
    return {"state": status.state.value, "reason": status.reason, "seconds": seconds,
            "frames": video_entry.frames, "readable_frames": readable,
            "manifest_state": manifest["state"],
            "listeners": len(video.feed.listeners) + len(audio.feed.listeners)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))
