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
  :class:`LipSync` where the sender's clock is on the recording's timeline
  (``offset`` = recording time - capture time);
* each video frame is placed at its capture time + that offset: the picture the
  sender captured with a sound is shown with that sound, however late either
  arrived. Only video moves when the reports start (or the offset changes): it
  holds or skips a picture, which nobody hears.

Before the first report of both tracks (about a second into a stream), and for
tracks without clocks, the arrival timing stays as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..sources import CaptureClock

log = logging.getLogger(__name__)

#: A video frame whose capture time puts it further than this from "now" (seconds)
#: is placed by its arrival instead (a sender clock that makes no sense).
MAX_SHIFT = 2.0


class LipSync:
    """One participant's audio/video alignment by their sender's clock."""

    def __init__(self, clocks: Mapping[str, CaptureClock], name: str):
        self.name = name
        self.audio_clock = clocks.get("audio")
        self.video_clock = clocks.get("video")
        #: Recording seconds minus the sender's capture seconds, from the audio placed last.
        self.offset: float | None = None
        #: Video frames placed by the sender's clock / refused (too far from "now").
        self.synced_frames = 0
        self.refused_frames = 0
        #: Where the first synced video frame went compared to its arrival timing (s).
        self.first_shift: float | None = None
        self._first: dict[str, int] = {}

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
        self.offset = end - (captured + frame.samples / frame.sample_rate)

    def video_time(self, frame: Any, now: float, arrival_time: float | None) -> float | None:
        """Where ``frame`` goes on the recording's timeline, or ``None``: by its arrival.

        ``arrival_time``: where the arrival timing would put it (for the log).
        """
        if self.offset is None:
            return None
        captured = self._capture("video", self.video_clock, frame)
        if captured is None:
            return None
        t = captured + self.offset
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
