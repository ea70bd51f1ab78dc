"""One participant's track on the recording's timeline.

Every track keeps its own mapping from its timestamps to recording time (in
seconds since the recording started). The mapping is anchored at the track's
first frame and re-anchored when the track's clock misbehaves:

* small jitter is kept as it is for video and smoothed away for audio (audio is
  laid end to end, so there are no clicks);
* a gap (nothing for a while, then frames with later timestamps) is kept: the
  compositor holds the last picture and the mixer plays silence;
* a jump backwards, a jump forwards beyond ``max_gap``, or (live recordings) a
  drift away from the wall clock re-anchors the track where it is expected;
* live recordings place a frame at its timestamp mapped through the fastest
  arrival seen so far (a frame never lands after "now"; a late one keeps its
  timestamp's place), so the latency of the first frame does not stick;
* live audio without timestamps is laid end to end but held to the same wall
  clock, so a source that delivers faster (or slower) than real time cannot
  run away from it;
* a live track holds a bounded amount of media not yet output
  (:data:`MAX_QUEUED_FRAMES` pictures, :attr:`TimingPolicy.max_queued_audio`
  seconds of audio) for when the output falls behind the wall clock (a slow
  encoder): the oldest is dropped, and nothing is moved, so once the output
  catches up the tracks are in sync again.

The output never depends on the input's timestamps being sane: it is produced
at a constant rate from these buffers.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

log = logging.getLogger(__name__)

#: A track holds at most this many pictures not yet shown (memory bound when a
#: live recording's encoder cannot keep up); older ones are skipped.
MAX_QUEUED_FRAMES = 150


@dataclass
class TimingPolicy:
    """How tolerant the timeline is of a track's timestamps (seconds)."""

    realtime: bool
    #: Audio within this distance of where it is expected is laid end to end.
    jitter: float = 0.040
    #: Virtual clock: forward gaps up to this are kept; bigger jumps re-anchor.
    max_gap: float = 5.0
    #: Wall clock: a track further than this from "now" is re-anchored to now.
    max_drift: float = 0.25
    #: Wall clock: a track holds at most this much audio not yet output (as long as
    #: :data:`MAX_QUEUED_FRAMES` pictures at 30 fps); the oldest is dropped beyond it.
    max_queued_audio: float = 5.0


def frame_seconds(frame: Any) -> float | None:
    """A frame's timestamp in seconds, or ``None`` if it has none."""
    t = frame.time  # PyAV computes it in C (no Fraction arithmetic)
    if t is None or t != t:  # no pts, or no time base (NaN)
        return None
    return t


class _Anchor:
    """Maps one track's timestamps to recording seconds."""

    def __init__(self, policy: TimingPolicy, name: str):
        self.policy = policy
        self.name = name
        self.offset: float | None = None
        #: Where the next frame is expected on the timeline (end of the last one).
        self.expected: float | None = None
        self.reanchors = 0

    def place(
        self, pts_s: float | None, duration: float, now: float, anchor: float, step: float = 0.0
    ) -> float:
        """Recording time of a frame at ``pts_s``; ``step``: a re-anchored frame's distance
        from the expected time (video: one frame interval after the previous frame)."""
        p = self.policy
        if pts_s is None:  # no timestamp: lay it end to end
            t = self.expected if self.expected is not None else anchor
            if p.realtime and duration > 0 and self.expected is not None:
                # Live audio: on the wall clock too, as a timestamped track would be.
                if t > now + p.jitter:
                    t = now  # delivered faster than real time: never after "now"
                elif t < now - p.max_drift:
                    self.reanchors += 1
                    log.info("%s: %.3f s behind the wall clock; re-anchored", self.name, now - t)
                    t = now
        else:
            if self.offset is None:
                self.offset = anchor - pts_s
            t = pts_s + self.offset
            if self.expected is not None:
                if p.realtime:
                    if now - p.max_drift <= t <= now + p.jitter:
                        pass
                    elif 0 < t - now <= p.max_drift:
                        # Faster than any frame before: the path's latency is
                        # lower than the anchor assumed; follow it (no jump).
                        self.offset = now - pts_s
                        t = now
                    bad = abs(t - now) > p.max_drift
                    target = now
                else:
                    bad = t < self.expected - p.jitter or t > self.expected + p.max_gap
                    target = self.expected + step
                if bad:
                    self.reanchors += 1
                    log.info("%s: timestamps jumped by %.3f s; re-anchored", self.name, t - target)
                    self.offset = target - pts_s
                    t = target
        self.expected = t + duration
        return t


class VideoTrackBuffer:
    """Video frames of one track placed on the timeline; the picture at any time."""

    def __init__(self, policy: TimingPolicy, name: str):
        self.anchor = _Anchor(policy, name)
        self.frames: deque[tuple[float, av.VideoFrame]] = deque()
        self.current: av.VideoFrame | None = None
        self.ended = False
        self.horizon = float("-inf")
        self._interval = 1 / 30
        self._last_t = 0.0
        self.dropped = 0

    def arrival_time(self, frame: av.VideoFrame) -> float | None:
        """Where the arrival timing would put ``frame`` now (no state changes)."""
        pts_s = frame_seconds(frame)
        offset = self.anchor.offset
        return None if pts_s is None or offset is None else pts_s + offset

    def push(
        self, frame: av.VideoFrame, now: float, anchor: float, at: float | None = None
    ) -> float:
        """Place ``frame`` by its timestamp, or at ``at`` when given (lip sync: the
        sender's capture clock, see :mod:`recfw.media.lipsync`)."""
        if at is not None:
            t = self._place_at(frame, at)
        else:
            # A picture has no length of its own: the anchor checks each frame
            # against the previous frame's time (a frame before it is a jump back).
            t = self.anchor.place(frame_seconds(frame), 0.0, now, anchor, self._interval)
        if self.frames or self.current is not None:
            spacing = t - self._last_t
            if 0 < spacing <= 0.1:  # a normal frame interval (not a gap)
                self._interval = spacing
        self._last_t = t
        self.frames.append((t, frame))
        if len(self.frames) > MAX_QUEUED_FRAMES:  # the output is far behind: skip ahead
            self.current = self.frames.popleft()[1]
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 300 == 0:
                log.warning(
                    "%s: output is behind; %d frames skipped", self.anchor.name, self.dropped
                )
        self.horizon = max(self.horizon, t)
        return t

    def _place_at(self, frame: av.VideoFrame, at: float) -> float:
        """Put ``frame`` at ``at``, never before the frame placed last (the pictures stay
        in order: a move back is caught up by skipping, not by reordering)."""
        t = max(at, self._last_t) if self.frames or self.current is not None else at
        pts_s = frame_seconds(frame)
        if pts_s is not None:  # arrival timing, if it takes over again, goes on from here
            self.anchor.offset = t - pts_s
        self.anchor.expected = t
        return t

    def picture_at(self, t: float, eps: float = 1e-6) -> av.VideoFrame | None:
        """The latest frame placed at or before ``t`` (held through gaps)."""
        while self.frames and self.frames[0][0] <= t + eps:
            self.current = self.frames.popleft()[1]
        return self.current

    def ready(self, t: float, eps: float = 1e-6) -> bool:
        """Is the picture at ``t`` final (a later frame is already here, or the track ended)?"""
        return self.ended or self.horizon > t + eps


#: Sample formats :meth:`AudioTrackBuffer._convert` reads directly (at the output rate).
_DIRECT = frozenset({"s16", "s16p", "flt", "fltp"})


class AudioTrackBuffer:
    """Audio of one track, resampled to the output format, placed by sample index."""

    def __init__(self, policy: TimingPolicy, name: str, sample_rate: int, layout: str):
        self.anchor = _Anchor(policy, name)
        self.policy = policy
        self.rate = sample_rate
        self.layout = layout
        self.channels = 1 if layout == "mono" else 2
        self.resampler: av.AudioResampler | None = None
        self._resampler_layout = ""
        self.chunks: deque[tuple[int, np.ndarray]] = deque()
        self.written_end = 0  # sample index after the last placed sample
        self.started = False
        self.ended = False
        #: Live: samples dropped because the output was too far behind (oldest first).
        self.dropped = 0
        #: Samples dropped because they overlapped what was already placed (a track
        #: re-anchored backwards, or one delivering faster than real time).
        self.overlapped = 0
        self._warned: set[str] = set()

    @property
    def queued(self) -> int:
        """Samples held: from the start of the oldest chunk kept to the newest placed."""
        return self.written_end - self.chunks[0][0] if self.chunks else 0

    @property
    def horizon(self) -> float:
        return self.written_end / self.rate if self.started else float("-inf")

    def _convert(self, frame: av.AudioFrame) -> np.ndarray | None:
        """Audio already at the output rate as float samples, without a resampler
        (``None``: it needs one). Same values as FFmpeg's conversion (s16 / 32768)."""
        if frame.sample_rate != self.rate or self.resampler is not None:
            return None
        fmt = frame.format.name
        channels = frame.layout.nb_channels
        if fmt not in _DIRECT or channels not in (1, self.channels):
            return None
        # packed: (1, samples * channels); planar: (channels, samples)
        data: np.ndarray = frame.to_ndarray()
        data = data.T if frame.format.is_planar else data.reshape(-1, channels)
        if fmt.startswith("s16"):
            data = data.astype(np.float32) * np.float32(1 / 32768)
        else:
            data = np.ascontiguousarray(data, np.float32)
        if channels != self.channels:
            data = np.repeat(data, self.channels, axis=1)
        return data

    def _resample(self, frame: av.AudioFrame) -> np.ndarray:
        direct = self._convert(frame)
        if direct is not None:
            return direct
        # Mono input is resampled as mono and copied to both channels at full
        # level (FFmpeg's upmix would lower it by 3 dB).
        layout = "mono" if frame.layout.nb_channels == 1 else self.layout
        if self.resampler is None or self._resampler_layout != layout:
            self.resampler = av.AudioResampler(format="flt", layout=layout, rate=self.rate)
            self._resampler_layout = layout
        try:
            out = self.resampler.resample(frame)
        except ValueError:  # the input format changed mid-stream: start a new resampler
            self.resampler = av.AudioResampler(format="flt", layout=layout, rate=self.rate)
            out = self.resampler.resample(frame)
        channels = 1 if layout == "mono" else self.channels
        if not out:
            return np.zeros((0, self.channels), np.float32)
        data = np.concatenate([f.to_ndarray().reshape(-1) for f in out]).reshape(-1, channels)
        if channels != self.channels:
            data = np.repeat(data, self.channels, axis=1)
        return data

    def push(self, frame: av.AudioFrame, now: float, anchor: float) -> float:
        duration = frame.samples / frame.sample_rate if frame.sample_rate else 0.0
        t = self.anchor.place(frame_seconds(frame), duration, now, anchor)
        data = self._resample(frame)
        start = round(t * self.rate)
        if self.started and abs(start - self.written_end) <= self.policy.jitter * self.rate:
            start = self.written_end  # jitter: lay end to end
        if self.started and start < self.written_end:  # re-anchored backwards: drop the overlap
            overlap = min(self.written_end - start, len(data))
            self.overlapped += overlap
            data = data[overlap:]
            start = self.written_end
            if self.policy.realtime and self.overlapped >= self.rate:
                self._warn_once(
                    "fast",
                    "%s: audio arrives faster than real time; %.1f s dropped so far",
                    self.overlapped / self.rate,
                )
        self.started = True
        if len(data):
            self.chunks.append((start, data))
            self.written_end = start + len(data)
        # Keep the anchor's idea of "expected" in step with what was really laid down.
        self.anchor.expected = self.written_end / self.rate
        if self.policy.realtime:  # (virtual clock: reading is throttled by the recorder)
            self._bound()
        return t

    def _bound(self) -> None:
        """Drop the oldest audio beyond ``max_queued_audio`` (the output is far behind)."""
        limit = self.written_end - round(self.policy.max_queued_audio * self.rate)
        dropped = 0
        while self.chunks and self.chunks[0][0] < limit:
            start, data = self.chunks[0]
            if start + len(data) <= limit:
                self.chunks.popleft()
                dropped += len(data)
            else:
                self.chunks[0] = (limit, data[limit - start :])
                dropped += limit - start
        if dropped:
            self.dropped += dropped
            self._warn_once(
                "behind",
                "%s: the output is over %.1f s behind this track; its oldest audio is dropped",
                self.policy.max_queued_audio,
            )

    def _warn_once(self, kind: str, msg: str, *args: object) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning(msg, self.anchor.name, *args)

    def read(self, s0: int, s1: int) -> np.ndarray:
        """Samples ``[s0, s1)`` (silence where nothing was placed); older audio is dropped."""
        out = np.zeros((s1 - s0, self.channels), np.float32)
        keep: deque[tuple[int, np.ndarray]] = deque()
        for start, data in self.chunks:
            end = start + len(data)
            if end <= s0:
                continue
            lo, hi = max(start, s0), min(end, s1)
            if hi > lo:
                out[lo - s0 : hi - s0] = data[lo - start : hi - start]
            keep.append((start, data))
        # Drop what is fully consumed.
        while keep and keep[0][0] + len(keep[0][1]) <= s1:
            keep.popleft()
        self.chunks = keep
        return out

    def ready(self, s1: int) -> bool:
        return self.ended or (self.started and self.written_end >= s1)
