"""Meetings created through the REST API: the request body, the meeting, its answer.

``POST /v1/meetings`` takes ``{roomNamePrefix?, endDate, recording?}``; the
meeting's ``recording`` object overrides the organization default for that
meeting only (see docs/settings.md, "Merge rules"). This module reads and
checks the body (every problem named by its field) and describes a meeting;
:mod:`recfw.server.app` serves the routes and owns the rooms.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import FieldError, SettingsError
from ..settings import effective, parse_recording
from ..storage import writes_locally
from ..times import iso_utc

if TYPE_CHECKING:
    from ..recording import RecordingOverride, RecordingSettings
    from ..registry import PluginRegistry
    from ..secrets import Secret

BODY_FIELDS = ("roomNamePrefix", "endDate", "recording")
#: Hex characters of a room name's random part (64 bits).
RANDOM_CHARS = 16
#: Room names are at most 64 characters: prefix + "-" + random part.
MAX_PREFIX = 64 - 1 - RANDOM_CHARS
PREFIX = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_PREFIX - 1}}}$")


@dataclass(frozen=True)
class Meeting:
    """A meeting: its room and its own effective recording settings."""

    meeting_id: str
    room_name: str
    start_date: datetime
    end_date: datetime
    settings: RecordingSettings

    @property
    def ended(self) -> bool:
        return datetime.now(UTC) >= self.end_date

    def to_dict(self, room_url: str, host_room_url: str) -> dict[str, Any]:
        """The API's answer; secrets masked (``accessKeySecret`` is never shown)."""
        return {
            "meetingId": self.meeting_id,
            "roomName": f"/{self.room_name}",
            "roomUrl": room_url,
            "hostRoomUrl": host_room_url,
            "startDate": iso_utc(self.start_date),
            "endDate": iso_utc(self.end_date),
            "recording": self.settings.to_dict(),
        }


def new_room_name(prefix: str | None) -> str:
    """``<prefix>-<16 random hex characters>`` (or just the random part)."""
    random_part = secrets.token_hex(RANDOM_CHARS // 2)
    return f"{prefix}-{random_part}" if prefix else random_part


def parse_body(raw: bytes) -> Any:
    """The JSON of a request body; ``SettingsError`` on ``body`` if it is not JSON."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SettingsError([FieldError("body", "must be UTF-8 encoded JSON")]) from None
    except (ValueError, RecursionError):
        raise SettingsError(
            [FieldError("body", "is not valid JSON (or is nested too deeply)")]
        ) from None


def _end_date(value: Any, now: datetime, errors: list[FieldError]) -> datetime | None:
    if value is None:
        errors.append(FieldError("endDate", "is required (ISO 8601, e.g. 2030-01-31T18:00:00Z)"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError("endDate", "must be an ISO 8601 date-time string"))
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:  # no offset: UTC
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        errors.append(
            FieldError("endDate", "is not an ISO 8601 date-time (e.g. 2030-01-31T18:00:00Z)")
        )
        return None
    if moment <= now:
        errors.append(FieldError("endDate", f"must be in the future (now is {iso_utc(now)})"))
        return None
    return moment


def _prefix(value: Any, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not PREFIX.match(value):
        errors.append(
            FieldError(
                "roomNamePrefix",
                "must be letters, digits, '-' and '_', starting with a letter or digit, "
                f"at most {MAX_PREFIX} characters",
            )
        )
        return None
    return value


def create_meeting(
    body: Any,
    default: RecordingOverride,
    plugins: PluginRegistry,
    environ: Mapping[str, str] | None = None,
) -> Meeting:
    """A new meeting from a ``POST /v1/meetings`` body; ``SettingsError`` lists every problem.

    The meeting's settings are ``effective(default, body["recording"])``: merged
    over the organization default and validated against the installed plugins.
    """
    if not isinstance(body, Mapping):
        raise SettingsError([FieldError("body", "must be a JSON object")])
    errors: list[FieldError] = []
    for key in body:
        if key not in BODY_FIELDS:
            errors.append(FieldError(str(key), f"unknown field (known: {', '.join(BODY_FIELDS)})"))
    now = datetime.now(UTC)
    prefix = _prefix(body.get("roomNamePrefix"), errors)
    end = _end_date(body.get("endDate"), now, errors)
    settings = None
    try:
        override = parse_recording(body.get("recording"), "recording")
        settings = effective(default, override, plugins, environ)
        errors.extend(_machine_local_destination(override, settings, plugins))
    except SettingsError as exc:
        errors.extend(exc.errors)
    if errors or settings is None or end is None:
        raise SettingsError(errors)
    return Meeting(
        meeting_id=str(uuid.uuid4()),
        room_name=new_room_name(prefix),
        start_date=now,
        end_date=end,
        settings=settings,
    )


def _machine_local_destination(
    override: RecordingOverride, settings: RecordingSettings, plugins: PluginRegistry
) -> list[FieldError]:
    """A meeting may not choose the place of a sink that writes on this machine.

    Such a sink (``writes_locally``: a folder, or an fsspec URL that may be
    ``file://``) would let an API caller make the server write files wherever it
    has permission. The organization default may use one.
    """
    dest, asked = settings.destination, override.destination
    if asked is None:
        return []
    # Inheriting the default's folder (and changing, say, only fileFormat) is fine.
    chooses_place = any(v is not None for v in (asked.provider, asked.bucket, asked.endpoint_url))
    if chooses_place and writes_locally(plugins.sink(dest.provider)):
        return [
            FieldError(
                "recording.destination.provider",
                f"{dest.provider!r} destinations are set in the organization default, "
                "not per meeting (use a bucket provider such as 's3')",
            )
        ]
    return []


def bearer_matches(header: str | None, key: Secret) -> bool:
    """Whether ``Authorization: Bearer <key>`` carries ``key`` (compared in constant time)."""
    if not header:
        return False
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(
        key.reveal().encode("utf-8", "surrogatepass"),
        given.strip().encode("utf-8", "surrogatepass"),
    )
