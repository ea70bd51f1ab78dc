"""Shared helpers for the media tests: scripted recordings with the virtual clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recfw.media import CompositeRecorder, RecordingStats
from recfw.plugins.encoders import MkvEncoder, Mp4Encoder
from recfw.plugins.sources.synthetic import SyntheticSource
from recfw.rooms import Participant, Role
from recfw.sources import ParticipantMedia

ENCODERS = {"mkv": MkvEncoder(), "mp4": Mp4Encoder()}


def person(pid: str) -> Participant:
    return Participant(pid, display_name=pid, role=Role.VISITOR)


def synthetic(pid: str, **options: Any) -> ParticipantMedia:
    options.setdefault("realtime", False)
    return SyntheticSource().create(person(pid), options)


@dataclass
class Step:
    """At ``at`` seconds: add ``media`` (a callable making it) or remove ``pid``."""

    at: float
    pid: str
    media: Callable[[], ParticipantMedia] | None = None


async def record(
    path: Path,
    fmt_name: str,
    steps: list[Step],
    stop_at: float,
    realtime: bool = False,
    clock: dict[str, float] | None = None,
) -> RecordingStats:
    """Record the scripted joins/leaves into ``path`` and return the stats.

    ``clock`` gets the wall times (``time.monotonic``) at which ``start()``
    returned and ``stop()`` was called.
    """
    clock = {} if clock is None else clock
    with open(path, "wb") as out:
        rec = CompositeRecorder(ENCODERS[fmt_name], out, realtime=realtime)
        for s in [s for s in steps if s.at <= 0]:
            rec.add(s.media())
        await rec.start()
        clock["started"] = time.monotonic()
        for s in sorted([s for s in steps if s.at > 0], key=lambda s: s.at):
            await rec.wait_until(s.at)
            if s.media is not None:
                rec.add(s.media())
            else:
                rec.remove(s.pid)
        await rec.wait_until(stop_at)
        clock["stopping"] = time.monotonic()
        return await rec.stop()
