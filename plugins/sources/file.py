"""The ``file`` source: an audio/video file played as a participant.

The file is read on demand: one thread per file demuxes and decodes only a
little ahead of what its tracks were asked for (:data:`AHEAD` frames per
track), then waits until they are read. Memory stays flat however long the
file, and a reader that does not wait (a non-real-time recording) gets the
frames as fast as they decode.

Options:

``path``
    the file (required).
``loop``
    start again at the end (default false); timestamps keep increasing.
``realtime``
    pace the frames at their timestamps on the wall clock, like a camera
    (default true: for live recordings); false returns each frame as soon as it
    is decoded (non-real-time recordings run as fast as the machine allows).

A file without video (or audio) gives a participant without that track.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from recfw.rooms import Participant
from recfw.sources import ParticipantMedia

log = logging.getLogger(__name__)

#: Decoded frames held ahead of the reader, per track (video: 8 pictures; audio
#: frames are short: 16 is about a third of a second). The thread is woken to
#: refill when a track is down to half of it.
AHEAD = {"video": 8, "audio": 16}
#: A track that is not read while the other one is holds at most this many
#: frames; beyond it its oldest are dropped (so an unread track cannot grow).
MAX_HELD = {"video": 150, "audio": 500}


class _Reader:
    """Demuxes and decodes one file in a thread, a bounded amount ahead of its tracks."""

    def __init__(self, path: Path, loop: bool):
        self.path = path
        self.loop = loop
        self.container = av.open(str(path))
        self.streams: dict[str, Any] = {}
        for kind, found in (
            ("video", self.container.streams.video),
            ("audio", self.container.streams.audio),
        ):
            if found:
                self.streams[kind] = found[0]
        self.queues: dict[str, deque[av.VideoFrame | av.AudioFrame]] = {
            kind: deque() for kind in self.streams
        }
        self.open = set(self.streams)  # tracks still read
        self.ended = False
        self.failed: BaseException | None = None
        self.dropped = {kind: 0 for kind in self.streams}
        self._cond = threading.Condition()
        self._waiters: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = {}
        self._thread: threading.Thread | None = None
        self._stopped = False
        #: The thread waits for its tracks to be read: when it began to, every track
        #: still read held AHEAD frames or more; it is woken when one is down to half
        #: (or empty), so a track may hold fewer than AHEAD while the thread is idle.
        self.idle = False

    # --- the tracks' side ------------------------------------------------------------

    async def get(self, kind: str) -> av.VideoFrame | av.AudioFrame:
        """The next frame of ``kind``; ``MediaStreamError`` at the end of the file."""
        while True:
            with self._cond:
                queue = self.queues[kind]
                if queue:
                    frame = queue.popleft()
                    if len(queue) == AHEAD[kind] // 2:  # refill in batches, not per frame
                        self._cond.notify()
                    return frame
                if self.ended or self._stopped or kind not in self.open:
                    raise MediaStreamError
                # empty: wait for the thread (started on the first read)
                loop = asyncio.get_running_loop()
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters[kind] = (loop, fut)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name=f"recfw-file-{self.path.name}", daemon=True
                    )
                    self._thread.start()
                self._cond.notify()
            try:
                await fut
            finally:
                with self._cond:
                    if self._waiters.get(kind, (None, None))[1] is fut:
                        del self._waiters[kind]

    def close(self, kind: str) -> None:
        """``kind``'s track stopped: stop filling it; the last one stops the thread."""
        with self._cond:
            self.open.discard(kind)
            self.queues[kind].clear()
            if self.open:
                return
            self._stopped = True
            self._cond.notify()
            started = self._thread is not None
        if not started:
            self.container.close()

    # --- the thread ------------------------------------------------------------------

    def _wake(self, kind: str) -> None:
        waiter = self._waiters.pop(kind, None)
        if waiter is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed
                waiter[0].call_soon_threadsafe(_resolve, waiter[1])

    def _needed(self) -> bool:
        """Decode more? Yes while a track still read holds fewer than AHEAD frames.

        (Checked when the thread is running or woken; an idle thread is woken only
        when a track is down to half of AHEAD, so this may be true while it sleeps.)
        """
        return any(len(self.queues[k]) < AHEAD[k] for k in self.open)

    def _frames(self) -> Generator[tuple[str, av.VideoFrame | av.AudioFrame], None, None]:
        """Every decoded frame of the file (again and again when looping), with its kind."""
        kinds = {stream.index: kind for kind, stream in self.streams.items()}
        offset = 0.0  # seconds added to the timestamps (looping)
        warned = False
        last: dict[str, int] = {}  # the last pts handed out, per kind
        while True:
            end = offset
            for packet in self.container.demux(list(self.streams.values())):
                kind = kinds[packet.stream.index]
                try:
                    frames: list[Any] = packet.decode()  # (video or audio: no subtitles read)
                except av.error.InvalidDataError as exc:
                    if not warned:
                        warned = True
                        log.warning("%s: damaged data skipped (%s)", self.path, exc)
                    continue
                for frame in frames:
                    tb = frame.time_base
                    if offset and frame.pts is not None and tb is not None:
                        frame.pts += round(offset * tb.denominator / tb.numerator)
                        # (after a seek a decoder may start a little early: priming)
                        frame.pts = max(frame.pts, last.get(kind, frame.pts - 1) + 1)
                    if frame.pts is not None:
                        last[kind] = frame.pts
                    t = frame.time
                    if t is not None and t == t:
                        length = (
                            frame.samples / frame.sample_rate
                            if kind == "audio" and frame.sample_rate
                            else 1 / float(self.streams["video"].average_rate or 30)
                        )
                        end = max(end, t + length)
                    yield kind, frame
            if not self.loop or end <= offset:  # (an empty file never loops)
                return
            offset = end
            self.container.seek(0)
            for stream in self.streams.values():
                stream.codec_context.flush_buffers()

    def _run(self) -> None:
        frames = self._frames()
        try:
            while True:
                with self._cond:
                    while not self._stopped and not self._needed():
                        self.idle = True
                        self._cond.wait()
                        self.idle = False
                    if self._stopped:
                        return
                kind, frame = next(frames)
                with self._cond:
                    if kind not in self.open:
                        continue
                    queue = self.queues[kind]
                    queue.append(frame)
                    if len(queue) > MAX_HELD[kind]:  # a track nobody reads
                        queue.popleft()
                        self.dropped[kind] += 1
                        if self.dropped[kind] == 1:
                            log.warning("%s: its %s track is not read; dropping", self.path, kind)
                    self._wake(kind)
        except StopIteration:
            pass
        except Exception as exc:  # noqa: BLE001 - the tracks end; logged here
            log.error("%s: reading failed: %s", self.path, exc)
            self.failed = exc
        finally:
            with self._cond:
                self.ended = True
                for kind in list(self._waiters):
                    self._wake(kind)
            frames.close()
            self.container.close()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Pace:
    """Real time: frame time ``t`` is due ``t - t0`` after the first frame was read."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.clock, self.sleep = clock, sleep
        self.start: float | None = None
        self.t0 = 0.0

    async def wait(self, t: float | None) -> None:
        if t is None or t != t:
            return
        now = self.clock()
        if self.start is None:
            self.start, self.t0 = now, t
            return
        delay = self.start + (t - self.t0) - now
        if delay > 0:
            await self.sleep(delay)


class FileTrack(MediaStreamTrack):
    """One track of a file (``kind`` ``"video"`` or ``"audio"``), read on demand."""

    def __init__(self, reader: _Reader, kind: str, pace: _Pace | None):
        super().__init__()
        self.kind = kind
        self._reader = reader
        self._pace = pace

    async def recv(self) -> av.VideoFrame | av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            frame = await self._reader.get(self.kind)
        except MediaStreamError:
            self.stop()
            raise
        if self._pace is not None:
            await self._pace.wait(frame.time)
        return frame

    def stop(self) -> None:
        super().stop()
        self._reader.close(self.kind)


class FileSource:
    """Source plugin ``file`` (see the module docstring for the options)."""

    name = "file"

    def create(self, participant: Participant, options: Mapping[str, Any]) -> ParticipantMedia:
        unknown = set(options) - {"path", "loop", "realtime"}
        if unknown:
            raise ValueError(f"unknown file source option(s) {sorted(unknown)}")
        if "path" not in options:
            raise ValueError("file source option 'path': missing")
        path = Path(str(options["path"]))
        if not path.is_file():
            raise ValueError(f"file source option 'path': {str(path)!r} is not a file")
        for flag in ("loop", "realtime"):
            if not isinstance(options.get(flag, False), bool):
                raise ValueError(
                    f"file source option {flag!r}: {options[flag]!r} is not true/false"
                )
        try:
            reader = _Reader(path, loop=options.get("loop", False))
        except Exception as exc:
            raise ValueError(
                f"file source option 'path': {str(path)!r} cannot be played: {exc}"
            ) from exc
        if not reader.streams:
            reader.container.close()
            raise ValueError(f"file source option 'path': {str(path)!r} has no audio or video")
        pace = _Pace() if options.get("realtime", True) else None
        tracks = {kind: FileTrack(reader, kind, pace) for kind in reader.streams}
        return ParticipantMedia(participant, video=tracks.get("video"), audio=tracks.get("audio"))
