"""The recording job handed to a ``recfw worker`` (JSON; never on the command line)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import RecfwError

#: Lines a worker writes on stdout start with this; anything else there is ignored.
STATE_PREFIX = "RECFW-STATE "


@dataclass(frozen=True)
class RecordingJob:
    """One recording: where the room is, who the recorder is, where the file goes.

    ``token`` is the one-time recorder token the room server made for this job:
    it is a secret (never in logs, never on a command line). ``spool_path`` is
    the spool file the server created (and holds the lock of) for this recording.
    """

    base_url: str
    room: str
    token: str = field(repr=False)
    recording_id: str
    spool_path: str
    file_format: str = "mkv"
    meeting_id: str | None = None
    encoder: dict[str, Any] = field(default_factory=dict)
    realtime: bool = True
    #: The composite's layout (``maxTiles``, ``minTileSeconds``: the active grid).
    layout: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> RecordingJob:
        """Parse a job; a clear error names the field that is missing or wrong."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RecfwError(f"recording job: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise RecfwError("recording job: expected a JSON object")
        for name in ("base_url", "room", "token", "recording_id", "spool_path"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise RecfwError(f"recording job: '{name}' must be a non-empty string")
        for name in ("encoder", "layout"):
            if not isinstance(data.get(name, {}), dict):
                raise RecfwError(f"recording job: '{name}' must be an object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecfwError(f"recording job: unknown field(s) {', '.join(unknown)}")
        return cls(**data)


def parse_state_line(line: bytes) -> dict[str, Any] | None:
    """A worker's state report from one line of its stdout (``None``: not a report)."""
    text = line.decode(errors="replace").strip()
    if not text.startswith(STATE_PREFIX):
        return None
    try:
        state = json.loads(text[len(STATE_PREFIX) :])
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def state_line(state: str, **fields: Any) -> str:
    """One state report of a worker (a line on its stdout)."""
    return STATE_PREFIX + json.dumps({"state": state, **fields}, default=str)
