"""The sources' contract: a participant's media as aiortc tracks.

Synthetic participants, files and real WebRTC peers all present themselves the
same way: an audio and/or a video :class:`aiortc.MediaStreamTrack`. The engine
pulls frames with ``await track.recv()`` until ``MediaStreamError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack

    from .rooms import Participant


@runtime_checkable
class CaptureClock(Protocol):
    """One track's frames on the sender's clock (WebRTC: from RTCP sender reports)."""

    def seconds(self, timestamp: int, since: int | None = None) -> float | None:
        """When the sender captured the frame whose ``pts`` is ``timestamp`` (seconds on
        the sender's clock, shared by all its tracks); ``None`` while unknown. A report
        about timestamps before ``since`` is not used."""
        ...


@dataclass
class ParticipantMedia:
    """The tracks of one participant; either may be ``None`` (camera off).

    ``clocks`` (optional, by kind ``"audio"`` / ``"video"``): each track's
    :class:`CaptureClock`. With both, the recorder lines the participant's
    video up with their audio by when the sender captured them (lip sync).
    """

    participant: Participant
    video: MediaStreamTrack | None = None
    audio: MediaStreamTrack | None = None
    clocks: Mapping[str, CaptureClock] | None = None

    def stop(self) -> None:
        for track in (self.video, self.audio):
            if track is not None:
                track.stop()


@runtime_checkable
class Source(Protocol):
    """A kind of participant media. ``name`` is how configs and the CLI refer to it."""

    name: str

    def create(self, participant: Participant, options: Mapping[str, Any]) -> ParticipantMedia:
        """Return the participant's tracks, configured by ``options`` (source-specific)."""
        ...
