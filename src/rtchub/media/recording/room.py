"""A room's recording: one file per track plus a manifest, start to stop.

:class:`RoomRecording` ties the parts together. Each recorded track listens
to its :class:`PacketSource` (the SFU's :class:`~rtchub.media.fanout.Uplink`),
a :class:`~rtchub.media.recording.track.TrackRecorder` turns its packets into
timed frames on the loop, and the recording's :class:`FileWorker` writes them
on its own thread. Tracks come and go while it records (participants join and
leave). Every file of one recording lives in one directory named after the
room and the start time, under the configured output directory:

    <output>/<room>_<YYYYmmddTHHMMSSZ>/
        manifest.json
        <room>_<stamp>_01_<participant>_video.webm
        <room>_<stamp>_02_<participant>_audio.webm

When the output cannot be written, :meth:`RoomRecording.start` raises
:class:`RecordingOutputError`; once recording, a write error (the disk is full)
stops the recording: its state becomes ``failed`` with the reason, its files are
closed as far as they can be, and the media plane runs on untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Protocol

from aiortc.rtp import RtpPacket

from rtchub.errors import CapacityError, TrackNotFound
from rtchub.media.recording.codecs import recorded_codec
from rtchub.media.recording.files import StreamInfo, TimedFrame, TrackFile
from rtchub.media.recording.limits import RecordingLimits
from rtchub.media.recording.manifest import (
    MANIFEST_NAME,
    Pause,
    RecordingStatus,
    TrackStatus,
    write_manifest,
)
from rtchub.media.recording.state import (
    RecordingOutputError,
    RecordingState,
    TrackAlreadyRecorded,
    require,
    transition,
)
from rtchub.media.recording.track import TrackRecorder
from rtchub.media.recording.worker import FileWorker

__all__ = ["PacketSource", "RoomRecording"]

log = logging.getLogger("rtchub.media")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RECORDING = "recording"  # the job key of the recording's own files (directory, manifest)


class PacketSource(Protocol):
    """Where a recorded track's packets come from (an Uplink is one)."""

    def listen(self, key: int, listener: Callable[[RtpPacket], None]) -> None:
        """Give every packet to ``listener`` from now on."""
        ...

    def unlisten(self, key: int) -> None:
        """Stop giving packets to the listener added under ``key``."""
        ...

    async def request_keyframe(self) -> None:
        """Ask the sender for a key frame."""
        ...


def _safe(name: str, limit: int = 40) -> str:
    """A file-name-safe rendering of an id: no separators, no leading dot, bounded."""
    return _UNSAFE.sub("-", name).strip(".-")[:limit] or "x"


def _make_directory(output: Path, name: str) -> Path:
    """On the file thread: create ``output`` if needed and a new directory in it."""
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(output))
    output.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        path = output / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "too many recordings with this name", str(output))


class _Track:
    """One recorded track: its recorder, its file and its entry in the manifest."""

    def __init__(self, index: int, track_id: str, participant: str, mime_type: str,
                 source: PacketSource, payload_type: int | None) -> None:
        self.index = index
        self.key = f"track {track_id!r}"
        self.track_id = track_id
        self.participant = participant
        self.codec = recorded_codec(mime_type)
        self.source = source
        self.payload_type = payload_type
        self.file: TrackFile | None = None
        self.recorder: TrackRecorder | None = None
        self.listening = False
        self.ended = False
        self.end_offset: float | None = None
        self.request: asyncio.Task[None] | None = None


class _FileSink:
    """A track's frames into its file, through the recording's file thread."""

    __slots__ = ("_file", "_key", "_opened", "_worker")

    def __init__(self, worker: FileWorker, key: str, file: TrackFile,
                 opened: Callable[[], None]) -> None:
        self._worker = worker
        self._key = key
        self._file = file
        self._opened = opened

    def open(self, info: StreamInfo) -> bool:
        """Queue the file's creation; the manifest then names it."""
        if not self._worker.submit(self._key, partial(self._file.open, info), control=True):
            return False
        self._opened()
        return True

    def write(self, frame: TimedFrame) -> bool:
        """Queue one frame; False when the backlog has no room for it."""
        return self._worker.submit(self._key, partial(self._file.write, frame),
                                   len(frame.data))

    def close(self) -> None:
        """Queue the file's trailer and close."""
        self._worker.submit(self._key, self._file.close, control=True)


class RoomRecording:
    """Records every track of one room, each to its own file, until stopped."""

    def __init__(self, room_id: str, output_dir: Path | str, *,
                 limits: RecordingLimits | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.room_id = room_id
        self.output_dir = Path(output_dir)
        self.limits = limits or RecordingLimits()
        self._clock = clock
        self._wall = wall
        self._on_change = on_change
        self._state = RecordingState.IDLE
        self._reason: str | None = None
        self._directory: Path | None = None
        self._stamp = ""
        self._started: float | None = None  # clock
        self._started_wall: float | None = None
        self._ended: float | None = None  # clock, once stopped or failed
        self._pauses: list[Pause] = []
        self._tracks: list[_Track] = []
        self._active: dict[str, _Track] = {}
        self._added = 0  # tracks ever added: numbers their files
        self._worker = FileWorker(f"rtchub-rec-{_safe(room_id, 16)}", self.limits.backlog_jobs,
                                  self.limits.backlog_bytes, self._job_failed)
        self._start_done = asyncio.Event()  # start() returned or raised
        self._finished = asyncio.Event()  # stopped, or failed and cleaned up
        self._cleanup: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def state(self) -> RecordingState:
        """Where the recording is in its life."""
        return self._state

    def _set_state(self, state: RecordingState) -> None:
        self._state = state
        self._changed()

    def _changed(self) -> None:
        self._on_change()

    def _now(self) -> float:
        """Recording time: seconds since the start."""
        return 0.0 if self._started is None else self._clock() - self._started

    async def start(self) -> RecordingStatus:
        """Create the recording's directory and manifest and begin recording every track.

        Raises :class:`RecordingOutputError` (and the recording is ``failed``) when the
        output directory cannot be created or written.
        """
        self._set_state(transition("start", self.room_id, self._state))
        self._worker.start()
        self._started_wall = self._wall()
        self._stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._started_wall))
        name = f"{_safe(self.room_id)}_{self._stamp}"
        try:
            self._directory = await self._worker.call(
                _RECORDING, partial(_make_directory, self.output_dir, name))
            self._started = self._clock()
            self._state = RecordingState.RECORDING
            await self._worker.call(_RECORDING, partial(
                write_manifest, self._directory / MANIFEST_NAME, self.status().manifest_json()))
        except OSError as exc:
            self._state = RecordingState.FAILED
            self._reason = f"cannot record room {self.room_id!r} in {str(self.output_dir)!r}: {exc}"
            self._ended = self._clock()
            await self._worker.close()
            self._finished.set()
            self._start_done.set()
            self._changed()
            raise RecordingOutputError(self._reason) from None
        for track in self._tracks:
            self._attach(track)
        self._start_done.set()
        self._changed()
        return self.status()

    async def pause(self) -> RecordingStatus:
        """Stop writing until :meth:`resume`; the files get a gap the manifest lists."""
        target = transition("pause", self.room_id, self._state)
        self._pauses.append(Pause(self._now(), None))
        for track in self._active.values():
            if track.recorder is not None:
                track.recorder.pause()
        self._set_state(target)
        self._save_manifest()
        return self.status()

    async def resume(self) -> RecordingStatus:
        """Write again; video tracks resume at their next key frame (they ask for one)."""
        target = transition("resume", self.room_id, self._state)
        self._end_pause()
        for track in self._active.values():
            if track.recorder is not None:
                track.recorder.resume()
        self._set_state(target)
        self._save_manifest()
        return self.status()

    def _end_pause(self) -> None:
        if self._pauses and self._pauses[-1].end is None:
            self._pauses[-1] = Pause(self._pauses[-1].start, self._now())

    async def stop(self) -> RecordingStatus:
        """Finish every file and the manifest; returns the final status."""
        self._set_state(transition("stop", self.room_id, self._state))
        self._end_pause()
        for track in list(self._active.values()):
            self._end(track)
        self._ended = self._clock()
        with contextlib.suppress(RuntimeError):  # the worker closed on a failure meanwhile
            await self._worker.call(_RECORDING, lambda: None)  # every file is closed
        if self._state is RecordingState.STOPPING:
            self._state = RecordingState.STOPPED
            try:
                await self._worker.call(_RECORDING, partial(
                    write_manifest, self._manifest_path(), self.status().manifest_json()))
            except OSError as exc:
                self._fail(f"cannot write the manifest: {exc}", release=False)
        await self._release()
        self._changed()
        return self.status()

    async def close(self) -> RecordingStatus:
        """Stop if recording or paused, and wait until every file is closed (any state)."""
        if self._state is RecordingState.STARTING:
            await self._start_done.wait()
        if self._state in (RecordingState.RECORDING, RecordingState.PAUSED):
            return await self.stop()
        cleanup = self._cleanup
        if cleanup is not None:
            await asyncio.shield(cleanup)
        if self._state is not RecordingState.IDLE:
            await self._finished.wait()
        return self.status()

    async def sync(self) -> None:
        """Wait until every file operation queued so far has run (frames are on disk)."""
        require("sync", self.room_id, self._state,
                (RecordingState.RECORDING, RecordingState.PAUSED))
        await self._worker.call(_RECORDING, lambda: None)

    async def _release(self) -> None:
        for track in self._tracks:
            await self._cancel_request(track)
        await self._worker.close()
        self._finished.set()

    # -- tracks --------------------------------------------------------------------------

    def add_track(self, track_id: str, *, participant: str, codec: str,
                  source: PacketSource, payload_type: int | None = None) -> None:
        """Record ``source``'s packets as track ``track_id`` of ``participant``.

        ``codec`` is the negotiated MIME type (``video/VP8``, ``video/VP9``,
        ``video/H264``, ``audio/opus``); any other raises ``CodecNotSupported``.
        ``payload_type``, the one negotiated for ``codec``, keeps out every other
        packet the source may carry (RTX retransmissions and padding, FEC, comfort
        noise): give it whenever the SDP says it.
        """
        require("add a track to", self.room_id, self._state,
                (RecordingState.IDLE, RecordingState.STARTING, RecordingState.RECORDING,
                 RecordingState.PAUSED))
        if track_id in self._active:
            raise TrackAlreadyRecorded(f"track {track_id!r} is already recorded in room "
                                       f"{self.room_id!r}")
        if len(self._active) >= self.limits.max_tracks:
            raise CapacityError(f"the recording of room {self.room_id!r} already has "
                                f"{len(self._active)} tracks (max_tracks)")
        track = _Track(self._added + 1, track_id, participant, codec, source, payload_type)
        self._added += 1
        self._tracks.append(track)
        self._active[track_id] = track
        if self._state in (RecordingState.RECORDING, RecordingState.PAUSED):
            self._attach(track)  # before the start, the start attaches it
            if self._state is RecordingState.PAUSED and track.recorder is not None:
                track.recorder.pause()
        self._changed()

    def remove_track(self, track_id: str) -> None:
        """Stop recording a track (its participant left); its file is finished."""
        track = self._active.get(track_id)
        if track is None:
            raise TrackNotFound(f"track {track_id!r} is not recorded in room {self.room_id!r}")
        if track.recorder is None:  # not attached yet: as if never added
            self._active.pop(track_id)
            self._tracks.remove(track)
            self._changed()
            return
        self._end(track)
        self._save_manifest()
        self._changed()

    def _attach(self, track: _Track) -> None:
        assert self._directory is not None
        name = (f"{_safe(self.room_id)}_{self._stamp}_{track.index:02d}_"
                f"{_safe(track.participant, 24)}_{track.codec.kind}.{track.codec.extension}")
        track.file = TrackFile(self._directory / name)
        sink = _FileSink(self._worker, track.key, track.file, self._file_opened)
        track.recorder = TrackRecorder(track.codec, sink,
                                       self.limits, self._clock,
                                       partial(self._request_keyframe, track),
                                       track.payload_type)
        track.source.listen(id(track), track.recorder.feed)
        track.listening = True

    def _end(self, track: _Track) -> None:
        self._active.pop(track.track_id, None)
        if track.listening:
            track.source.unlisten(id(track))
            track.listening = False
        if track.recorder is not None and not track.ended:
            track.recorder.finish()
        track.ended = True
        if track.end_offset is None:
            track.end_offset = self._now()

    def _request_keyframe(self, track: _Track) -> None:
        if track.request is not None and not track.request.done():
            return  # one in flight is enough
        track.request = asyncio.get_running_loop().create_task(
            self._ask_keyframe(track), name=f"rtchub-rec-keyframe-{track.index}")

    async def _ask_keyframe(self, track: _Track) -> None:
        try:
            await track.source.request_keyframe()
        except Exception:  # the sender may be gone; the next loss asks again
            log.exception("asking for a key frame of track %r failed", track.track_id)

    async def _cancel_request(self, track: _Track) -> None:
        task, track.request = track.request, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- files ---------------------------------------------------------------------------

    def _file_opened(self) -> None:
        self._save_manifest()
        self._changed()

    def _manifest_path(self) -> Path:
        assert self._directory is not None
        return self._directory / MANIFEST_NAME

    def _save_manifest(self) -> None:
        if self._directory is not None:
            self._worker.submit(_RECORDING, partial(write_manifest, self._manifest_path(),
                                                    self.status().manifest_json()),
                                control=True)

    def _job_failed(self, key: str, exc: BaseException) -> None:
        if self._state is RecordingState.FAILED:
            return  # files closing after the failure fail too
        what = "the manifest" if key == _RECORDING else f"the file of {key}"
        release = self._state is not RecordingState.STOPPING  # else stop() releases
        if isinstance(exc, OSError):
            self._fail(f"cannot write {what}: {exc}", release=release)
        else:  # the muxer refused data: a bug, but not one to take the media plane down
            self._fail(f"writing {what} failed: {type(exc).__name__}: {exc}", release=release)

    def _fail(self, reason: str, *, release: bool) -> None:
        self._reason = reason
        self._end_pause()
        for track in list(self._active.values()):
            self._end(track)
        self._ended = self._clock()
        self._state = RecordingState.FAILED
        self._worker.discard()  # frames not written yet, and the closes queued above
        for track in self._tracks:
            if track.file is not None:
                self._worker.submit(track.key, track.file.close, control=True)
        self._save_manifest()  # best effort: the disk may be what failed
        if release:
            self._cleanup = asyncio.get_running_loop().create_task(
                self._release(), name=f"rtchub-rec-cleanup-{_safe(self.room_id, 16)}")
        self._changed()

    # -- status --------------------------------------------------------------------------

    def status(self) -> RecordingStatus:
        """The recording as it is now (what the manifest says)."""
        end = self._ended if self._ended is not None else self._clock()
        duration = 0.0 if self._started is None else end - self._started
        return RecordingStatus(self.room_id, self._state, self._reason, self._directory,
                               self._started_wall, duration, tuple(self._pauses),
                               tuple(self._track_status(t) for t in self._tracks))

    def _track_status(self, track: _Track) -> TrackStatus:
        recorder = track.recorder
        info = None if recorder is None else recorder.info
        start = None
        if recorder is not None and recorder.started_at is not None and self._started is not None:
            # a first packet read off the socket in the loop turn that started the
            # recording is stamped a fraction of a millisecond before it: it starts at 0
            start = max(0.0, recorder.started_at - self._started)
        state = "ended" if track.ended else "recording" if info is not None else "waiting"
        file = track.file.path.name if track.file is not None and info is not None else None
        return TrackStatus(
            track.track_id, track.participant, track.codec.kind, track.codec.name, state, file,
            track.codec.container if file else None,
            info.width if info else 0, info.height if info else 0, start, track.end_offset,
            recorder.frames if recorder else 0, recorder.bytes if recorder else 0,
            recorder.packets if recorder else 0, recorder.packets_lost if recorder else 0,
            recorder.frames_dropped if recorder else 0,
            recorder.keyframe_requests if recorder else 0)
