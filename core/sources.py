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


@dataclass
class ParticipantMedia:
    """The tracks of one participant; either may be ``None`` (camera off)."""

    participant: Participant
    video: MediaStreamTrack | None = None
    audio: MediaStreamTrack | None = None

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
