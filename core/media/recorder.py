"""CompositeRecorder: participants' tracks in, one composite file out.

One clock per recording. The output loop produces frame ``n`` (time ``n/fps``)
and the audio samples ``[n*rate/fps, (n+1)*rate/fps)`` together, so the output
is constant-rate, strictly monotonic and in sync by construction; the inputs
are placed on the timeline by :mod:`recfw.media.timeline`.

``realtime=True``: the clock is the wall clock and frame ``n`` is produced
:data:`LATENCY` seconds after its time (for live WebRTC tracks).
``realtime=False``: a virtual clock that advances as soon as every present
track has delivered media past the next frame (for non-realtime sources in
tests and benchmarks). :meth:`CompositeRecorder.wait_until` lets a caller act
at an exact point of the timeline in either mode.

Compositing and encoding run in one worker thread (:mod:`.worker`), so the
event loop (and the WebRTC stack on it) is never blocked by the encoder; the
encoder's own threads (x264 frame threads) overlap with the compositing. A live
recording asks the stream for low latency (``prefer_low_latency()``, optional:
the built-in encoders switch x264 to slice threads, which keep up better when
other work competes for the processors).

More people than :attr:`GridPolicy.max_tiles` are shown as the active grid
(:mod:`.activegrid`: whoever spoke most recently, then join order; tiles stay a
minimum time; the last cell says "+K more"). The video of someone without a
tile is not scaled, and a track that can pause (``pause()``/``resume()``, as the
recorder's decoded tracks do) is paused: it decodes nothing until the person
gets a tile again (it resumes at a keyframe). Everyone's audio is mixed.

When pictures have to be dropped, the x264 preset steps down (``veryfast`` ->
``superfast`` -> ``ultrafast``) and back up once none have been dropped for a
while (:mod:`.speed` decides; the stream switches encoders at a keyframe, see
the built-in encoders' ``set_speed``). Streams without ``speed_steps`` /
``set_speed`` simply keep their settings.

A live recording that falls more than :data:`BEHIND_WARNING` seconds behind
the wall clock is reported once (with how far behind and how fast it runs),
before any media has to be dropped; :class:`RecordingStats` tells afterwards
how far behind it was at worst and what was skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import av
import numpy as np

from ..encoding import EncodedStream, Encoder, OutputFormat
from .activegrid import Candidate, GridChoice, GridPolicy, choose, level_dbfs, overflow_label
from .compositor import Compositor, Tile
from .lipsync import LipSync
from .mixer import Mixer
from .speed import SpeedGovernor
from .timeline import AudioTrackBuffer, TimingPolicy, VideoTrackBuffer
from .worker import EncodeWorker

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack

    from ..sources import ParticipantMedia

log = logging.getLogger(__name__)

#: Live recordings: how far behind the wall clock the output runs (jitter room).
LATENCY = 0.3
#: Virtual clock: how far ahead of the output a track is read.
READ_AHEAD = 0.5
#: Virtual clock: how long (wall seconds) to wait for a silent track before going on.
STALL_TIMEOUT = 2.0
#: Virtual clock: a track read READ_AHEAD ahead is read again once the output is
#: within this much of what it holds (fewer wake-ups than one per output frame).
REFILL_AT = 0.25
#: Frames handed to the worker thread and not yet encoded, at most.
MAX_PENDING = 15
#: Live recordings: with this many pictures queued for the encoder (the bounded
#: queue between compositor and encoder) while the output is late, a frame's
#: picture is dropped: it is neither composited nor encoded, so the player holds
#: the last picture; its audio is always encoded, so the audio has no gap the
#: inputs did not have and never waits behind more than this many pictures.
MAX_PICTURES_PENDING = 6
#: ... late meaning this many seconds past its due time (beyond LATENCY): an
#: encoder that keeps up but had a hiccup catches up without dropping.
DROP_WHEN_LATE = 0.1
#: Live recordings: seconds behind the wall clock (beyond LATENCY) that are reported
#: (or half of ``TimingPolicy.max_queued_audio`` if that is less: before audio is dropped).
BEHIND_WARNING = 1.0


def receive_delay(track: MediaStreamTrack) -> float:
    """Seconds a live track's frames arrive later than they were captured, where known.

    aiortc's receiver releases audio only when its jitter buffer holds 4
    packets (``JitterBuffer(prefetch=4)``): three 20 ms packets later than
    video, whose frames are released as soon as they are complete.
    """
    if track.kind == "audio" and type(track).__name__ in ("RemoteStreamTrack", "DecodedTrack"):
        return AIORTC_AUDIO_PREFETCH_DELAY
    return 0.0


#: See :func:`receive_delay`.
AIORTC_AUDIO_PREFETCH_DELAY = 0.060

#: ``RECFW_LIPSYNC=off``: place every track by its arrival, ignoring senders' clocks
#: (to compare, or if a sender's clock misbehaves).
LIPSYNC_ENV = "RECFW_LIPSYNC"


def lipsync_enabled() -> bool:
    """Whether senders' clocks place video (see :mod:`recfw.media.lipsync`)."""
    return os.environ.get(LIPSYNC_ENV, "on").strip().lower() not in ("off", "0", "no", "false")


@dataclass
class RecordingStats:
    """What was recorded: the output's duration, frame and sample counts and size."""

    duration_s: float
    video_frames: int
    audio_samples: int
    width: int
    height: int
    #: Live: input pictures skipped because the output was too far behind.
    skipped_frames: int = 0
    #: Live: seconds of input audio dropped because the output was too far behind.
    dropped_audio_s: float = 0.0
    #: Live: the most the output was behind its due time (beyond ``LATENCY``), seconds.
    max_behind_s: float = 0.0
    #: Live: output pictures not encoded because the encoder could not keep up
    #: (the picture before them is held; their audio is in the file).
    dropped_video_frames: int = 0
    #: Input pictures placed by their sender's capture clock (lip sync, see
    #: :mod:`recfw.media.lipsync`) rather than by when they arrived.
    synced_video_frames: int = 0
    #: Live: the encoder's speed steps, ``(seconds of output, x264 preset)`` each
    #: (empty: it ran at the configured preset throughout).
    preset_changes: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class _Participant:
    media: ParticipantMedia
    joined_at: float
    video: VideoTrackBuffer | None
    audio: AudioTrackBuffer | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: Live mode: when they left on the recording's clock. The tile stays for the
    #: frames before that instant that are still to be made (the latency window).
    left_at: float | None = None
    #: Join order (the active grid ranks people who have not spoken by it).
    order: int = 0
    #: When their audio was last at speaking level, on the recording's clock.
    last_spoke: float | None = None
    #: Whether they have a tile (their video is read and scaled only then).
    shown: bool = True
    #: Their media stopped and they are reconnecting: the tile holds the last picture
    #: under a "RECONNECTING" label (see :mod:`.compositor`).
    reconnecting: bool = False
    #: After new tracks replaced theirs: the old connection's last picture, shown (and
    #: labelled RECONNECTING) until the new video has a picture of its own.
    held: Any = None
    #: Lines their video up with their audio by the sender's clock (when known).
    sync: LipSync | None = None


class CompositeRecorder:
    """Records the participants added to it as one 720p grid with mixed audio.

    ::

        rec = CompositeRecorder(encoder, open(path, "wb"), OutputFormat(), {}, realtime=True)
        rec.add(media)              # before or after start()
        await rec.start()
        ...
        rec.remove("p1")
        stats = await rec.stop()    # flushes and closes the encoded stream

    ``output`` is handed to ``encoder.open`` and never closed here.
    """

    def __init__(
        self,
        encoder: Encoder,
        output: BinaryIO,
        fmt: OutputFormat = OutputFormat(),  # noqa: B008 - frozen dataclass
        options: Mapping[str, Any] = {},  # noqa: B006 - never mutated
        *,
        realtime: bool = True,
        clock: Callable[[], float] = time.monotonic,
        grid: GridPolicy | None = None,
    ):
        self.encoder = encoder
        self.output = output
        #: Called (on the event loop) with the exception when the output loop dies
        #: mid-recording, so the owner can stop at once instead of at the next stop().
        self.on_failure: Callable[[BaseException], None] | None = None
        self.fmt = fmt
        self.options = dict(options)
        self.realtime = realtime
        #: The wall clock of live recordings (tests may pass one they control).
        self.clock = clock
        self.policy = TimingPolicy(realtime=realtime)
        #: Who gets a tile when not everyone fits (:mod:`recfw.media.activegrid`).
        self.grid = grid or GridPolicy()
        #: The current active-grid choice (cells, since when, how many more).
        self.choice = GridChoice()
        self._joined = 0
        self._people: dict[str, _Participant] = {}
        self._frames = 0  # next output frame index
        self._samples = 0  # audio samples written
        self._t0: float | None = None
        self._started = asyncio.Event()
        self._stopping = False
        self._end_frame: int | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._data = asyncio.Event()  # a track delivered something
        self._stop_requested = asyncio.Event()
        #: Readers waiting for the output to reach a time (virtual clock read-ahead).
        self._tick_waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._next_tick = float("inf")
        self._barriers: list[tuple[float, asyncio.Future[None]]] = []
        self._worker = EncodeWorker(max_pending=MAX_PENDING)
        self._stream: EncodedStream | None = None
        self._compositor = Compositor(fmt.width, fmt.height)
        self._channels = 1 if fmt.audio_layout == "mono" else 2
        self._mixer = Mixer(fmt.sample_rate, self._channels)
        self._stats: RecordingStats | None = None
        self._video_tb = fmt.video_time_base
        self._audio_tb = fmt.audio_time_base
        #: Buffers of participants who left (their skip/drop counts still count).
        self._gone: list[VideoTrackBuffer | AudioTrackBuffer] = []
        self._syncs: list[LipSync] = []
        self.max_behind = 0.0
        self._warned_behind = False
        #: Live: output pictures dropped because the encoder queue was full.
        self.dropped_video_frames = 0
        self._warned_dropping = False
        #: Live: chooses the encoder's speed step (tests may tune its timings before start()).
        self.speed = SpeedGovernor(1)
        self._presets: tuple[str, ...] = ()
        self._speed_failed = False
        self._preset_changes: list[tuple[float, str]] = []
        self._preset_step = 0
        self._speed_mark = 0  # pictures posted before the last speed change
        self._pictures_posted = 0  # written by the event loop only
        self._pictures_done = 0  # written by the worker thread only
        # Output frame n shows the input frame nearest to n/fps (not the latest
        # before it): input frames up to just under half a frame later count.
        self._nearest = 0.5 / fmt.fps - 1e-4

    # --- the clock -----------------------------------------------------------

    @property
    def position(self) -> float:
        """Seconds of output decided so far (the time of the next output frame)."""
        return self._frames / self.fmt.fps

    @property
    def tiles(self) -> list[str]:
        """Participant ids in the composite (not leaving), in join order."""
        return [pid for pid, e in self._people.items() if e.left_at is None]

    @property
    def shown(self) -> list[str]:
        """Participant ids with a tile in the last frame made, in cell order."""
        return list(self.choice.cells)

    def now(self) -> float:
        """The recording's clock: wall seconds since start, or the virtual position."""
        if not self.realtime:
            return self.position
        if self._t0 is None:
            return 0.0
        return self.clock() - self._t0

    def _sample_index(self, frame: int) -> int:
        return frame * self.fmt.sample_rate // self.fmt.fps

    async def wait_until(self, t: float) -> None:
        """Return when the output reaches ``t`` seconds (before frame ``ceil(t*fps)`` is made).

        Whatever the caller does right after (``add``/``remove``) takes effect
        exactly at that frame, also with the virtual clock.
        """
        if self._stopping:
            raise RuntimeError("the recording is stopping")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers.append((t, fut))
        await fut

    # --- participants ----------------------------------------------------------

    def add(self, media: ParticipantMedia) -> None:
        """Give ``media``'s participant a tile and start reading their tracks."""
        p = media.participant
        if not p.is_person:
            log.debug("%r (role %s) is not a person: no tile", p.id, p.role)
            return
        if self._stopping:
            log.warning("participant %r added while the recording stops: ignored", p.id)
            return
        previous = self._people.get(p.id)
        if previous is not None and previous.left_at is None:
            self._replace(previous, media)
            return
        if previous is not None:
            self._drop(p.id)
        now = self.now()
        video, audio = self._buffers(media)
        entry = _Participant(media, now, video, audio, order=self._joined)
        self._joined += 1
        entry.sync = self._lipsync(media, video, audio)
        loop = asyncio.get_running_loop()
        for track, buf in ((media.video, video), (media.audio, audio)):
            if track is not None and buf is not None:
                entry.tasks.append(loop.create_task(self._pull(entry, track, buf)))
        self._people[p.id] = entry
        log.info("participant %r joins the composite at %.3f s", p.id, now)
        # Who has a tile now: someone added without one is paused before reading anything.
        self._choose(self.position)

    def _buffers(
        self, media: ParticipantMedia
    ) -> tuple[VideoTrackBuffer | None, AudioTrackBuffer | None]:
        pid = media.participant.id
        video = VideoTrackBuffer(self.policy, f"{pid}/video") if media.video else None
        if not media.audio:
            return video, None
        rate, layout = self.fmt.sample_rate, self.fmt.audio_layout
        return video, AudioTrackBuffer(self.policy, f"{pid}/audio", rate, layout)

    def _lipsync(
        self,
        media: ParticipantMedia,
        video: VideoTrackBuffer | None,
        audio: AudioTrackBuffer | None,
    ) -> LipSync | None:
        """A participant's lip sync, when their tracks come with their sender's clocks."""
        if not (media.clocks and video is not None and audio is not None and lipsync_enabled()):
            return None
        sync = LipSync(media.clocks, media.participant.id)
        self._syncs.append(sync)
        return sync

    def _replace(self, entry: _Participant, media: ParticipantMedia) -> None:
        """New tracks for a participant in the composite (they reconnected): same tile,
        same place in the grid; the last picture is held until the new video arrives."""
        pid = media.participant.id
        for task in entry.tasks:
            task.cancel()
        self._gone.extend(b for b in (entry.video, entry.audio) if b is not None)
        video, audio = self._buffers(media)
        held = None
        if video is not None and entry.video is not None:
            held = video.current = entry.video.picture_at(self.position)
        new = _Participant(
            media,
            entry.joined_at,
            video,
            audio,
            order=entry.order,
            last_spoke=entry.last_spoke,
            reconnecting=entry.reconnecting,
            held=held,
        )
        new.sync = self._lipsync(media, video, audio)
        loop = asyncio.get_running_loop()
        for track, buf in ((media.video, video), (media.audio, audio)):
            if track is not None and buf is not None:
                new.tasks.append(loop.create_task(self._pull(new, track, buf)))
        self._people[pid] = new  # an existing key keeps its place (the grid order)
        if not entry.shown:
            self._show(pid, new, False)  # hidden by the active grid: the new video waits too
        self._data.set()
        log.info("participant %r has new tracks at %.3f s (same tile)", pid, self.now())

    def set_reconnecting(self, participant_id: str, reconnecting: bool) -> None:
        """Mark the participant's tile as reconnecting (their media stopped) or not."""
        entry = self._people.get(participant_id)
        if entry is not None and entry.reconnecting != reconnecting:
            entry.reconnecting = reconnecting
            log.info(
                "participant %r's tile %s at %.3f s",
                participant_id,
                "shows RECONNECTING" if reconnecting else "is live again",
                self.now(),
            )

    def remove(self, participant_id: str) -> None:
        """Take the participant's tile away and stop reading their tracks.

        Live, the output runs :data:`LATENCY` behind the clock: the tile stays in
        the frames before this instant that are still to be made, so a leaving
        participant's last moments (and the end of a recording) are not cut.
        """
        entry = self._people.get(participant_id)
        if entry is None or entry.left_at is not None:
            return
        if not self.realtime:
            self._drop(participant_id)
            return
        entry.left_at = self.now()
        for task in entry.tasks:
            task.cancel()
        self._data.set()
        log.info("participant %r leaves the composite at %.3f s", participant_id, entry.left_at)

    def _drop(self, participant_id: str) -> None:
        entry = self._people.pop(participant_id, None)
        if entry is None:
            return
        for task in entry.tasks:
            task.cancel()
        self._gone.extend(b for b in (entry.video, entry.audio) if b is not None)
        self._data.set()
        if entry.left_at is None:
            log.info("participant %r leaves the composite at %.3f s", participant_id, self.now())

    async def _pull(
        self,
        entry: _Participant,
        track: MediaStreamTrack,
        buf: VideoTrackBuffer | AudioTrackBuffer,
    ) -> None:
        from aiortc.mediastreams import MediaStreamError

        await self._started.wait()
        delay = receive_delay(track) if self.realtime else 0.0
        try:
            while not self._stopping:
                if not self.realtime and buf.horizon > self.position + READ_AHEAD:
                    await self._wait_for_position(buf.horizon - READ_AHEAD + REFILL_AT)
                    continue
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    break
                now = self.now() - delay
                anchor = now if self.realtime else max(entry.joined_at, now)
                if entry.sync is None:
                    buf.push(frame, now, anchor)  # type: ignore[arg-type]
                elif isinstance(buf, VideoTrackBuffer):
                    arrival = buf.arrival_time(frame)  # type: ignore[arg-type]
                    for picture, at in entry.sync.video(frame, now, arrival, self.realtime):
                        buf.push(picture, now, anchor, at=at)
                else:
                    before = buf.written_end
                    buf.push(frame, now, anchor)  # type: ignore[arg-type]
                    if buf.written_end != before:
                        entry.sync.audio_placed(frame, buf.written_end / buf.rate)
                    if entry.video is not None:
                        for picture, at in entry.sync.release(now):
                            entry.video.push(picture, now, anchor, at=at)
                self._data.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reading %s failed; the track is treated as ended", buf.anchor.name)
        finally:
            buf.ended = True
            self._data.set()

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the encoded stream and start the clock and the output loop."""
        if self._loop_task is not None:
            raise RuntimeError("the recording was already started")
        loop = asyncio.get_running_loop()
        try:
            self._stream = await self._worker.call(
                self.encoder.open, self.output, self.fmt, self.options
            )
            # Optional: a stream that can trade a little efficiency for keeping up
            # with the wall clock under CPU contention (the built-in encoders can).
            tune = getattr(self._stream, "prefer_low_latency", None)
            if self.realtime and callable(tune):
                await self._worker.call(tune)
            steps = getattr(self._stream, "speed_steps", None)
            can_step = callable(getattr(self._stream, "set_speed", None))
            if self.realtime and callable(steps) and can_step:
                self._presets = tuple(await self._worker.call(steps))
                self.speed.steps = len(self._presets)
        except Exception:
            self._abandon()
            raise
        self._t0 = self.clock()
        self._started.set()
        self._loop_task = loop.create_task(self._run())
        self._loop_task.add_done_callback(self._loop_done)

    def _loop_done(self, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            # Reported now; stop() raises it again after closing the stream.
            log.error("the recording's output loop failed: %r", exc)
            if self.on_failure is not None:
                self.on_failure(exc)

    async def stop(self) -> RecordingStats:
        """Stop the clock, encode what is left, close the stream; return what was recorded."""
        if self._stats is not None:
            return self._stats
        if self._loop_task is None:
            self._abandon()
            raise RuntimeError("the recording was never started")
        self._stopping = True
        if self.realtime and self._end_frame is None:
            # At least the first picture: a recording stopped as soon as it started
            # (a stop that came while it was starting) is a short file that decodes,
            # never an empty one stored as a recording.
            self._end_frame = max(self._frames, round(self.now() * self.fmt.fps), 1)
        self._data.set()
        self._stop_requested.set()
        self._wake(everyone=True)
        for _, fut in self._barriers:
            if not fut.done():
                fut.cancel()
        error: BaseException | None = None
        try:
            await self._loop_task
        except Exception as exc:  # noqa: BLE001 - reported after the stream is closed
            error = exc
        for entry in list(self._people.values()):
            for task in entry.tasks:
                task.cancel()
        await self._worker.drain()
        error = error or self._worker.error
        try:
            if self._stream is not None:
                await self._worker.call(self._stream.close)
        except Exception as exc:
            if error is None:
                raise
            # The first failure (e.g. the disk filled up) is the one to report.
            log.debug("closing the stream after %r also failed: %r", error, exc)
        finally:
            self._worker.shutdown()
        if error is not None:
            raise error
        buffers = self._gone + [
            b for e in self._people.values() for b in (e.video, e.audio) if b is not None
        ]
        self._stats = RecordingStats(
            duration_s=self._frames / self.fmt.fps,
            video_frames=self._frames,
            audio_samples=self._samples,
            width=self.fmt.width,
            height=self.fmt.height,
            skipped_frames=sum(b.dropped for b in buffers if isinstance(b, VideoTrackBuffer)),
            dropped_audio_s=sum(b.dropped for b in buffers if isinstance(b, AudioTrackBuffer))
            / self.fmt.sample_rate,
            max_behind_s=self.max_behind,
            dropped_video_frames=self.dropped_video_frames,
            synced_video_frames=sum(sync.synced_frames for sync in self._syncs),
            preset_changes=list(self._preset_changes),
        )
        log.info("recording stopped: %s", self._stats)
        return self._stats

    def _abandon(self) -> None:
        """Stop reading every track and free the worker thread (nothing was recorded)."""
        self._stopping = True
        for entry in self._people.values():
            for task in entry.tasks:
                task.cancel()
        self._worker.shutdown()

    # --- the output loop ------------------------------------------------------

    async def _wait_for_position(self, t: float) -> None:
        """Virtual clock: return once the output has reached ``t`` (or is stopping)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tick_waiters.append((t, fut))
        self._next_tick = min(self._next_tick, t)
        await fut

    def _wake(self, everyone: bool = False) -> None:
        """Resolve the readers waiting for the output position reached (or all)."""
        if not everyone and self.position < self._next_tick:
            return
        t = float("inf") if everyone else self.position
        keep = []
        for at, fut in self._tick_waiters:
            if at <= t:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((at, fut))
        self._tick_waiters = keep
        self._next_tick = min((at for at, _ in keep), default=float("inf"))

    async def _release_barriers(self) -> None:
        if not self._barriers:
            return
        t = self.position + 1e-9
        due = [b for b in self._barriers if b[0] <= t]
        if not due:
            return
        self._barriers = [b for b in self._barriers if b[0] > t]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)
        # Let the waiters run (and add/remove participants) before this frame is made.
        for _ in range(3):
            await asyncio.sleep(0)

    def _ready(self) -> bool:
        t = self.position
        s1 = self._sample_index(self._frames + 1)
        for entry in self._people.values():
            if entry.video is not None and entry.shown and not entry.video.ready(t + self._nearest):
                return False
            if entry.audio is not None and not entry.audio.ready(s1):
                return False
        return True

    async def _wait_for_inputs(self) -> None:
        deadline = time.monotonic() + STALL_TIMEOUT
        while not self._stopping and not self._ready():
            self._data.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                late = [pid for pid, e in self._people.items() if not self._ready_one(e)]
                log.warning("no media from %s for %.1f s; going on", late, STALL_TIMEOUT)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._data.wait(), left)

    def _ready_one(self, entry: _Participant) -> bool:
        s1 = self._sample_index(self._frames + 1)
        video = entry.video
        return (
            not entry.shown or video is None or video.ready(self.position + self._nearest)
        ) and (entry.audio is None or entry.audio.ready(s1))

    async def _run(self) -> None:
        assert self._t0 is not None
        while True:
            await self._release_barriers()
            if self._stopping:
                if not self.realtime or self._end_frame is None:
                    break
                if self._frames >= self._end_frame:
                    break
            elif self.realtime:
                due = self._t0 + self.position + LATENCY
                delay = due - self.clock()
                if -delay > self.max_behind:
                    self._behind(-delay)
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        # Sleeps until the frame is due; stop() wakes it early.
                        await asyncio.wait_for(self._stop_requested.wait(), delay)
                    continue
            else:
                await self._wait_for_inputs()
                if self._stopping:
                    continue
            await self._emit()

    def _behind(self, seconds: float) -> None:
        """Live: the output is ``seconds`` later than it is due; report it once past the mark."""
        self.max_behind = seconds
        # (before any audio is dropped, also when the policy drops it sooner)
        mark = min(BEHIND_WARNING, self.policy.max_queued_audio / 2)
        if seconds > mark and not self._warned_behind:
            self._warned_behind = True
            elapsed = self.now()
            log.warning(
                "the recording is %.1f s behind real time (%d participants; %.1f s of output "
                "in %.1f s: %.2fx real time, encoder queue %d/%d); past %.1f s behind, the "
                "oldest media is dropped",
                seconds,
                len(self._people),
                self.position,
                elapsed,
                self.position / elapsed if elapsed > 0 else 0.0,
                self._worker.pending,
                MAX_PENDING,
                self.policy.max_queued_audio,
            )

    async def _emit(self) -> None:
        n = self._frames
        t = n / self.fmt.fps
        s0, s1 = self._sample_index(n), self._sample_index(n + 1)
        for pid in [p for p, e in self._people.items() if e.left_at is not None and e.left_at <= t]:
            self._drop(pid)
        tracks = []
        for e in self._people.values():
            if e.audio is not None:
                samples = e.audio.read(s0, s1)
                tracks.append(samples)
                if level_dbfs(samples) >= self.grid.speaking_dbfs:
                    e.last_spoke = t
        pcm = self._mixer.mix(tracks, s1 - s0)
        tiles = self._tiles(t)
        self._frames = n + 1
        self._samples = s1
        self._wake()
        worker = self._worker
        if worker.error is not None:
            raise worker.error
        dropped = self._encoder_behind(n)
        if dropped:
            self._drop_picture(n)
            worker.post(self._encode, n, None, pcm, s0)
        else:
            self._pictures_posted += 1
            worker.post(self._encode, n, tiles, pcm, s0)
        # The speed governor counts in seconds of output, and only once a picture made
        # after its last change was encoded: drops while the encoder still works off
        # the pictures queued before say nothing about the new preset.
        if (
            self.realtime
            and not self._stopping
            and not self._speed_failed
            and self._pictures_done > self._speed_mark
        ):
            step = self.speed.observe(n / self.fmt.fps, dropped)
            if step is not None:
                self._step_speed(n, step)
        await worker.throttle()
        if worker.error is not None:
            raise worker.error
        await asyncio.sleep(0)

    def _choose(self, t: float) -> None:
        """Apply the active grid at ``t``: who has a tile (the others' video is paused)."""
        people = self._people
        self.choice = choose(
            [Candidate(pid, e.order, e.last_spoke) for pid, e in people.items()],
            self.choice,
            t,
            self.grid,
        )
        cells = set(self.choice.cells)
        for pid, e in people.items():
            shown = pid in cells
            if shown != e.shown:
                self._show(pid, e, shown)

    def _tiles(self, t: float) -> list[Tile]:
        """The cells of the frame at ``t``: the active grid's choice (pauses the hidden)."""
        self._choose(t)
        pictures = {}
        for pid, e in self._people.items():
            if e.video is not None:  # (also hidden: a track that cannot pause is consumed)
                pictures[pid] = e.video.picture_at(t + self._nearest)
        tiles = [self._tile(pid, self._people[pid], pictures.get(pid)) for pid in self.choice.cells]
        if self.choice.overflow:
            label = overflow_label(self.choice.overflow)
            tiles.append(Tile(label, None, label=label))
        return tiles

    @staticmethod
    def _tile(pid: str, entry: _Participant, picture: Any) -> Tile:
        if entry.held is not None and picture is not entry.held:
            entry.held = None  # the new connection's video has its first picture
        return Tile(pid, picture, reconnecting=entry.reconnecting or entry.held is not None)

    def _show(self, pid: str, entry: _Participant, shown: bool) -> None:
        """Give ``pid`` a tile again (resume their video) or take it (pause it)."""
        entry.shown = shown
        track = entry.media.video
        method = getattr(track, "resume" if shown else "pause", None)
        if callable(method):
            method()
            if not shown and entry.video is not None:
                entry.video.frames.clear()  # only the last picture is kept while hidden
        log.debug("participant %r %s a tile", pid, "gets" if shown else "loses")

    def _encoder_behind(self, n: int) -> bool:
        """Live: the encoder's picture queue is full: drop frame ``n``'s picture."""
        if not self.realtime or self._stopping or n == 0 or self._t0 is None:
            return False
        if self._pictures_posted - self._pictures_done < MAX_PICTURES_PENDING:
            return False
        return self.clock() - (self._t0 + n / self.fmt.fps + LATENCY) > DROP_WHEN_LATE

    def _drop_picture(self, n: int) -> None:
        """Live: the encoder is behind; frame ``n``'s picture is not made (audio is)."""
        self.dropped_video_frames += 1
        if not self._warned_dropping:
            self._warned_dropping = True
            elapsed = self.now()
            log.warning(
                "the encoder cannot keep up: dropping video frames (the last picture is held, "
                "audio is kept): pictures queued %d/%d at %.1f s of output in %.1f s "
                "(%.2fx real time), %d participants",
                self._pictures_posted - self._pictures_done,
                MAX_PICTURES_PENDING,
                n / self.fmt.fps,
                elapsed,
                (n / self.fmt.fps) / elapsed if elapsed > 0 else 0.0,
                len(self._people),
            )

    def _step_speed(self, n: int, step: int) -> None:
        """Live: switch the encoder to speed step ``step`` from the next picture on."""
        old, new = self._presets[self._preset_step], self._presets[step]
        down = step > self._preset_step
        self._preset_step = step
        self._preset_changes.append((n / self.fmt.fps, new))
        elapsed = self.now()
        figures = (
            f"{self.dropped_video_frames} pictures dropped so far, pictures queued "
            f"{self._pictures_posted - self._pictures_done}/{MAX_PICTURES_PENDING} at "
            f"{n / self.fmt.fps:.1f} s of output in {elapsed:.1f} s "
            f"({(n / self.fmt.fps) / elapsed if elapsed > 0 else 0.0:.2f}x real time), "
            f"{len(self._people)} participants"
        )
        if down and len(self._preset_changes) == 1:
            log.warning(
                "the encoder cannot keep up: x264 preset %s -> %s (faster, a little larger "
                "file; back to %s once it keeps up): %s",
                old,
                new,
                self._presets[0],
                figures,
            )
        elif down:
            log.info(
                "the encoder still cannot keep up: x264 preset %s -> %s: %s",
                old,
                new,
                figures,
            )
        else:
            log.info(
                "the encoder keeps up: x264 preset %s -> %s (no picture dropped for %.0f s): %s",
                old,
                new,
                self.speed.up_after,
                figures,
            )
        self._speed_mark = self._pictures_posted
        self._worker.post(self._set_speed, step)

    def _set_speed(self, step: int) -> None:
        """Worker thread: the stream switches presets; a failure keeps the running one."""
        assert self._stream is not None
        try:
            switched = self._stream.set_speed(step)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - the recording goes on at the current preset
            log.exception("switching the x264 preset failed; it stays as it is")
            switched = False
        if not switched:
            self._speed_failed = True

    def _encode(self, n: int, tiles: list[Tile] | None, pcm: np.ndarray, s0: int) -> None:
        """Worker thread: composite frame ``n`` and encode it with its audio
        (``tiles`` ``None``: the picture is dropped, only the audio is encoded)."""
        assert self._stream is not None
        if tiles is not None:
            try:
                frame = self._compositor.render(tiles)
                frame.pts = n
                frame.time_base = self._video_tb
                self._stream.write_video(frame)
            finally:
                self._pictures_done += 1
        if len(pcm):
            audio = av.AudioFrame.from_ndarray(
                pcm.reshape(1, -1), format="s16", layout=self.fmt.audio_layout
            )
            audio.sample_rate = self.fmt.sample_rate
            audio.pts = s0
            audio.time_base = self._audio_tb
            self._stream.write_audio(audio)
