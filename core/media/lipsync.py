"""Lip sync: a participant's video placed by their audio, on the sender's capture clock.

Without help, each track is placed on the recording's timeline by when its
frames *arrive* (:mod:`recfw.media.timeline`), so whatever delays one track more
than the other (the network, the sender's or the server's queues, a decoder
thread on a busy machine) shows up as an audio/video offset. A WebRTC sender
says when it captured what it sends: its RTCP sender reports map each track's
RTP timestamps to one NTP clock shared by all its tracks. With a
:class:`~recfw.sources.CaptureClock` per track (``ParticipantMedia.clocks``):

* the audio is placed exactly as before (laid end to end, so it never gets a
  gap or a discontinuity the input did not have). Each audio frame placed tells
  :class:`LipSync` where that stretch of the sender's clock is on the
  recording's timeline (``offset`` = recording time - capture time);
* each video frame is placed at its capture time + the offset of the audio
  captured at the same instant (live, a picture that arrives before its audio
  waits for it a little; then the latest offset is used): the picture the
  sender captured with a sound is shown with that sound, however late either
  arrived, also across a place where the audio was re-anchored. Only video
  moves when the reports start (or the offset changes): it holds or skips a
  picture, which nobody hears.

Before the first report of both tracks (about a second into a stream), and for
tracks without clocks, the arrival timing stays as it is.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..sources import CaptureClock

log = logging.getLogger(__name__)

#: A video frame whose capture time puts it further than this from "now" (seconds)
#: is placed by its arrival instead (a sender clock that makes no sense).
MAX_SHIFT = 2.0
#: Stretches of audio (capture start, capture end, offset) remembered, at most.
HISTORY = 256
#: Live: a picture captured after all the audio placed so far waits this long (seconds)
#: for that audio (the audio of a WebRTC sender arrives later than its video: aiortc's
#: jitter buffer holds 3-4 packets), then goes by the latest offset ...
HOLD = 0.2
#: ... and at most this many pictures wait.
MAX_HELD = 30


class LipSync:
    """One participant's audio/video alignment by their sender's clock."""

    def __init__(self, clocks: Mapping[str, CaptureClock], name: str):
        self.name = name
        self.audio_clock = clocks.get("audio")
        self.video_clock = clocks.get("video")
        #: Recording seconds minus the sender's capture seconds, from the audio placed last.
        self.offset: float | None = None
        #: [capture start, capture end, offset] of the audio placed lately, oldest first
        #: (consecutive frames with the same offset are one stretch).
        self._audio: deque[list[float]] = deque(maxlen=HISTORY)
        #: Video frames placed by the sender's clock / refused (too far from "now").
        self.synced_frames = 0
        self.refused_frames = 0
        #: Where the first synced video frame went compared to its arrival timing (s).
        self.first_shift: float | None = None
        self._first: dict[str, int] = {}
        #: Pictures waiting for their audio: (frame, capture time, since, arrival time).
        self._held: deque[tuple[Any, float | None, float, float | None]] = deque()

    def _capture(self, kind: str, clock: CaptureClock | None, frame: Any) -> float | None:
        pts = frame.pts
        if clock is None or pts is None:
            return None
        # Reports about frames before this participant's first one (another publisher
        # forwarded on the same stream before) say nothing about this one.
        first = self._first.setdefault(kind, pts)
        return clock.seconds(pts, since=first)

    def audio_placed(self, frame: Any, end: float) -> None:
        """``frame``'s last sample was laid down ending at ``end`` (recording seconds)."""
        captured = self._capture("audio", self.audio_clock, frame)
        if captured is None or not frame.sample_rate:
            return
        stop = captured + frame.samples / frame.sample_rate
        offset = end - stop
        self.offset = offset
        last = self._audio[-1] if self._audio else None
        if last is not None and abs(last[2] - offset) < 1e-4 and abs(last[1] - captured) < 0.03:
            last[1] = stop
        else:
            self._audio.append([captured, stop, offset])

    def _offset_at(self, captured: float) -> float | None:
        """The offset of the audio captured at ``captured``: of the stretch holding it; in
        a gap, of the stretch after it; after all the audio placed (the video is ahead),
        the latest."""
        newer: float | None = None
        for start, stop, offset in reversed(self._audio):
            if captured >= start:
                return offset if captured < stop or newer is None else newer
            newer = offset
        return newer if newer is not None else self.offset

    def video(
        self, frame: Any, now: float, arrival_time: float | None, hold: bool = True
    ) -> list[tuple[Any, float | None]]:
        """The pictures to place now, in order, each with its time on the recording's
        timeline (``None``: by its arrival, as without lip sync).

        ``hold`` (live): a picture captured after all the audio placed so far waits
        (at most :data:`HOLD` seconds) for that audio, which tells where it goes;
        :meth:`release` gives it back. ``arrival_time``: where the arrival timing
        would put it (for the log).
        """
        captured = self._capture("video", self.video_clock, frame)
        ahead = (
            hold
            and captured is not None
            and self.offset is not None
            and bool(self._audio)
            and captured >= self._audio[-1][1]
        )
        if ahead or self._held:
            self._held.append((frame, captured, now, arrival_time))
            return self.release(now)
        return [(frame, self._time(captured, now, arrival_time))]

    def release(self, now: float) -> list[tuple[Any, float | None]]:
        """Held pictures whose audio is placed now, or that waited long enough."""
        out: list[tuple[Any, float | None]] = []
        placed = self._audio[-1][1] if self._audio else float("-inf")
        while self._held:
            frame, captured, since, arrival_time = self._held[0]
            waiting = captured is not None and captured >= placed
            if waiting and now - since < HOLD and len(self._held) <= MAX_HELD:
                break
            self._held.popleft()
            out.append((frame, self._time(captured, now, arrival_time)))
        return out

    def _time(self, captured: float | None, now: float, arrival_time: float | None) -> float | None:
        if captured is None:
            return None
        offset = self._offset_at(captured)
        if offset is None:
            return None
        t = captured + offset
        if abs(t - now) > MAX_SHIFT:
            self.refused_frames += 1
            if self.refused_frames == 1:
                log.warning(
                    "%s: the sender's clock puts a picture %.3f s from now; placed by its "
                    "arrival instead",
                    self.name,
                    t - now,
                )
            return None
        self.synced_frames += 1
        if self.first_shift is None:
            self.first_shift = t - arrival_time if arrival_time is not None else 0.0
            log.info(
                "%s: lip sync by the sender's clock (RTCP sender reports); the video moves "
                "%+.0f ms from its arrival timing",
                self.name,
                self.first_shift * 1000,
            )
        return t
