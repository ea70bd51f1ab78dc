"""The ``file`` source: an audio/video file played as a participant.

Uses aiortc's :class:`~aiortc.contrib.media.MediaPlayer`, which decodes in a
thread and paces frames in real time. Options: ``path`` (required), ``loop``
(default false). A file without video (or audio) gives a participant without
that track.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recfw.rooms import Participant
from recfw.sources import ParticipantMedia


class FileSource:
    """Source plugin ``file``."""

    name = "file"

    def create(self, participant: Participant, options: Mapping[str, Any]) -> ParticipantMedia:
        from aiortc.contrib.media import MediaPlayer

        unknown = set(options) - {"path", "loop"}
        if unknown:
            raise ValueError(f"unknown file source option(s) {sorted(unknown)}")
        if "path" not in options:
            raise ValueError("file source option 'path': missing")
        path = Path(str(options["path"]))
        if not path.is_file():
            raise ValueError(f"file source option 'path': {str(path)!r} is not a file")
        loop = options.get("loop", False)
        if not isinstance(loop, bool):
            raise ValueError(f"file source option 'loop': {loop!r} is not true/false")
        try:
            player = MediaPlayer(str(path), loop=loop)
        except Exception as exc:
            raise ValueError(
                f"file source option 'path': {str(path)!r} cannot be played: {exc}"
            ) from exc
        return ParticipantMedia(participant, video=player.video, audio=player.audio)
