"""Meetings: the ``POST /v1/meetings`` body (every field of Whereby's request), room names,
and what a stored meeting means for its room.

A meeting lives in the control plane's database (:class:`recfw.control.MeetingStore`).
Its ``recording`` object overrides the organization default for that meeting only
(docs/settings.md, "Merge rules"). This module reads and checks a request (every
problem named by its field), makes room names, and turns a stored meeting into
the :class:`MeetingRoom` the room server opens; :mod:`recfw.api.meetings` serves
the routes, :class:`MeetingClock` closes rooms at their meeting's ``endDate``.

Whereby fields recfw accepts and stores but does not act on yet are listed in
:data:`NOT_HONOURED` (and in docs/api.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import FieldError, SettingsError
from ..settings import merge, parse_recording, resolve, validate, with_env_credentials
from ..storage import writes_locally
from ..times import iso_utc

if TYPE_CHECKING:
    from ..control import Database
    from ..control.models import Meeting
    from ..recording import RecordingOverride, RecordingSettings
    from ..registry import PluginRegistry

log = logging.getLogger(__name__)

BODY_FIELDS = (
    "endDate",
    "startDate",
    "roomNamePrefix",
    "roomNamePattern",
    "roomMode",
    "isLocked",
    "fields",
    "templateType",
    "recording",
    "liveTranscription",
    "streaming",
)
ROOM_NAME_PATTERNS = ("uuid", "human-short")
ROOM_MODES = ("normal", "group")
#: ``fields`` values: extra URLs in a meeting's answer.
MEETING_FIELDS = ("hostRoomUrl", "viewerRoomUrl")
TEMPLATE_TYPES = ("viewerMode",)
#: Request fields stored as given but not acted on yet (see docs/api.md).
NOT_HONOURED = ("isLocked", "liveTranscription", "streaming", "startDate")
#: Whereby's longest ``roomNamePrefix`` (after lower-casing and removing whitespace).
MAX_PREFIX = 39
_PREFIX = re.compile(r"[a-z0-9][a-z0-9_-]*")
#: human-short names: characters nobody confuses (no 0/o, 1/l/i).
HUMAN_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"


@dataclass(frozen=True)
class MeetingRequest:
    """A checked ``POST /v1/meetings`` body, ready to be stored."""

    end_date: datetime
    room_name_prefix: str | None
    room_name_pattern: str
    room_mode: str
    is_locked: bool
    fields: tuple[str, ...]
    template_type: str | None
    #: The ``recording`` override as stored (REST shape, secrets included), or ``None``.
    recording: dict[str, Any] | None
    #: Stored, not acted on: ``streaming``, ``liveTranscription`` (as JSON text).
    options: dict[str, str]


# --- reading a request ---------------------------------------------------------------


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


def parse_date(value: Any, field: str, errors: list[FieldError]) -> datetime | None:
    """An ISO 8601 date-time (no offset: UTC) as an aware UTC datetime."""
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be an ISO 8601 date-time string"))
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        errors.append(FieldError(field, "is not an ISO 8601 date-time (e.g. 2030-01-31T18:00:00Z)"))
        return None


def _end_date(value: Any, now: datetime, errors: list[FieldError]) -> datetime | None:
    if value is None:
        errors.append(FieldError("endDate", "is required (ISO 8601, e.g. 2030-01-31T18:00:00Z)"))
        return None
    moment = parse_date(value, "endDate", errors)
    if moment is not None and moment < now.replace(microsecond=0):
        errors.append(FieldError("endDate", f"must not be in the past (now is {iso_utc(now)})"))
        return None
    return moment


def _prefix(value: Any, errors: list[FieldError]) -> str | None:
    """Whereby's rules: lower-cased, whitespace removed, at most 39 characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError("roomNamePrefix", "must be a string"))
        return None
    prefix = "".join(value.split()).lower()
    if prefix and (len(prefix) > MAX_PREFIX or not _PREFIX.fullmatch(prefix)):
        errors.append(
            FieldError(
                "roomNamePrefix",
                "must be letters, digits, '-' and '_', starting with a letter or digit, "
                f"at most {MAX_PREFIX} characters (upper case is lowered, spaces removed)",
            )
        )
        return None
    return prefix


def _choice(value: Any, field: str, choices: tuple[str, ...], errors: list[FieldError]) -> Any:
    if value is not None and value not in choices:
        errors.append(FieldError(field, f"must be one of {', '.join(choices)}"))
        return None
    return value


def parse_fields(value: Any, field: str = "fields") -> tuple[str, ...]:
    """``fields`` as a list (body) or a comma-separated string (query); ``SettingsError``."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise SettingsError([FieldError(field, "must be a list of field names")])
    items = [i.strip() for i in items if i.strip()]
    unknown = [i for i in items if i not in MEETING_FIELDS]
    if unknown:
        raise SettingsError(
            [
                FieldError(
                    field, f"unknown field {unknown[0]!r} (known: {', '.join(MEETING_FIELDS)})"
                )
            ]
        )
    return tuple(dict.fromkeys(items))


def _options(body: Mapping[str, Any], errors: list[FieldError]) -> dict[str, str]:
    options = {}
    for name in ("streaming", "liveTranscription"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            errors.append(FieldError(name, "must be an object or null"))
            continue
        options[name] = json.dumps(value, sort_keys=True)
    return options


def normalize_recording(value: Any, errors: list[FieldError]) -> dict[str, Any] | None:
    """The ``recording`` override as recfw stores it.

    ``destination.provider: "whereby"`` (Whereby-hosted storage) means the
    organization's own destination here: only its ``fileFormat`` is kept.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        errors.append(FieldError("recording", "must be an object or null"))
        return None
    recording = copy.deepcopy(dict(value))
    dest = recording.get("destination")
    if isinstance(dest, Mapping) and dest.get("provider") == "whereby":
        kept = {k: dest[k] for k in ("fileFormat",) if dest.get(k) is not None}
        recording["destination"] = kept or None
    return recording


def parse_meeting_request(
    body: Any,
    default: RecordingOverride,
    plugins: PluginRegistry,
    now: datetime,
    environ: Mapping[str, str] | None = None,
) -> MeetingRequest:
    """A checked request from a ``POST /v1/meetings`` body; ``SettingsError`` lists every
    problem. The meeting's recording settings are checked as they will apply
    (merged over ``default``, validated against the installed plugins)."""
    if not isinstance(body, Mapping):
        raise SettingsError([FieldError("body", "must be a JSON object")])
    errors: list[FieldError] = []
    for key in body:
        if key not in BODY_FIELDS:
            errors.append(FieldError(str(key), f"unknown field (known: {', '.join(BODY_FIELDS)})"))
    end = _end_date(body.get("endDate"), now, errors)
    if body.get("startDate") is not None:  # deprecated by Whereby, ignored: checked only
        parse_date(body["startDate"], "startDate", errors)
    prefix = _prefix(body.get("roomNamePrefix"), errors)
    pattern = _choice(body.get("roomNamePattern"), "roomNamePattern", ROOM_NAME_PATTERNS, errors)
    mode = _choice(body.get("roomMode"), "roomMode", ROOM_MODES, errors)
    template = _choice(body.get("templateType"), "templateType", TEMPLATE_TYPES, errors)
    locked = body.get("isLocked")
    if locked is not None and not isinstance(locked, bool):
        errors.append(FieldError("isLocked", "must be true or false"))
        locked = None
    try:
        fields = parse_fields(body.get("fields"))
    except SettingsError as exc:
        errors.extend(exc.errors)
        fields = ()
    options = _options(body, errors)
    recording = normalize_recording(body.get("recording"), errors)
    if recording is not None:
        try:
            meeting_settings(default, recording, plugins, environ)
        except SettingsError as exc:
            errors.extend(exc.errors)
    if errors or end is None:
        raise SettingsError(errors)
    if template == "viewerMode":  # Whereby: a locked group room
        locked, mode = True, "group"
    return MeetingRequest(
        end_date=end,
        room_name_prefix=prefix,
        room_name_pattern=pattern or "uuid",
        room_mode=mode or "normal",
        is_locked=bool(locked),
        fields=fields,
        template_type=template,
        recording=recording,
        options=options,
    )


# --- recording settings of a meeting -----------------------------------------------------


def meeting_settings(
    default: RecordingOverride,
    recording: Mapping[str, Any] | None,
    plugins: PluginRegistry,
    environ: Mapping[str, str] | None = None,
) -> RecordingSettings:
    """The effective settings of a meeting whose override is ``recording`` (REST shape).

    As :func:`recfw.settings.effective`, and: ``type`` ``"local"``/``"cloud"`` both
    mean "record" (recfw records on the server; which one follows the provider),
    and a meeting may not pick a folder on this machine.
    """
    import os

    override = parse_recording(recording, "recording")
    settings = merge(
        with_env_credentials(default, os.environ if environ is None else environ), override
    )
    if settings.type in ("local", "cloud") and settings.destination is not None:
        kind = "local" if settings.destination.provider == "local" else "cloud"
        settings = replace(settings, type=kind)
    errors = validate(settings, plugins)
    if not errors:
        errors = _machine_local_destination(override, settings, plugins)
    if errors:
        raise SettingsError(errors)
    return resolve(settings)


def shown_settings(
    default: RecordingOverride, recording: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A meeting's recording settings for an answer: merged, secrets masked (no validation)."""
    try:
        override = parse_recording(recording, "recording")
    except SettingsError:
        return default.to_dict()
    return merge(default, override).to_dict()


def _machine_local_destination(
    override: RecordingOverride, settings: RecordingOverride, plugins: PluginRegistry
) -> list[FieldError]:
    """A meeting may not choose the place of a sink that writes on this machine
    (``writes_locally``: an API caller could make the server write wherever it has
    permission). The organization default may use one."""
    dest, asked = settings.destination, override.destination
    if asked is None or dest is None or not dest.provider:
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


# --- room names --------------------------------------------------------------------------


def new_room_name(prefix: str | None, pattern: str = "uuid") -> str:
    """``<prefix><uuid4>`` (Whereby's default) or ``<prefix>xxxxx-xxxxx`` (``human-short``:
    ten characters nobody confuses, about 50 random bits)."""
    if pattern == "human-short":
        chars = "".join(secrets.choice(HUMAN_ALPHABET) for _ in range(10))
        random_part = f"{chars[:5]}-{chars[5:]}"
    else:
        random_part = str(uuid.uuid4())
    return f"{prefix or ''}{random_part}"


# --- the room side -----------------------------------------------------------------------


@dataclass(frozen=True)
class MeetingRoom:
    """What the room server needs to open a meeting's room."""

    meeting_id: str
    room_name: str
    end_date: datetime
    #: ``normal`` or ``group``: the room server applies the mode's capacity.
    room_mode: str
    settings: RecordingSettings

    @classmethod
    def from_row(
        cls, row: Meeting, default: RecordingOverride, plugins: PluginRegistry
    ) -> MeetingRoom:
        """The room of a stored meeting (``SettingsError`` if its settings no longer apply)."""
        return cls(
            meeting_id=row.meeting_id,
            room_name=row.room_name,
            end_date=row.end_date,
            room_mode=row.room_mode or "normal",
            settings=meeting_settings(default, row.recording_revealed(), plugins),
        )


def lookup_room(
    db: Database, name: str, now: datetime, default: RecordingOverride, plugins: PluginRegistry
) -> tuple[MeetingRoom | None, str | None]:
    """``(meeting room, None)``, ``(None, why nobody may join)`` or ``(None, None)`` for a
    room no meeting owns. Blocking: call it in a thread."""
    from ..control import MeetingStore

    with db.session(readonly=True) as s:
        row = MeetingStore().by_room(s, name, deleted=True)
        if row is None:
            return None, None
        if row.deleted_at is not None:
            return None, "this meeting has been deleted"
        if row.closed_at is not None or row.end_date <= now:
            return None, "this meeting has ended"
        try:
            return MeetingRoom.from_row(row, default, plugins), None
        except SettingsError as exc:
            log.warning(
                "meeting %s: its recording settings no longer apply: %s", row.meeting_id, exc
            )
            return None, f"this meeting's recording settings no longer apply: {exc}"


#: How often the meeting clock looks for ended meetings (seconds).
SWEEP_EVERY = 5.0


class MeetingClock:
    """Ends meetings on time: at ``endDate`` their room closes (a running recording is stopped
    and stored, everyone in it is told and disconnected); an hour later the meeting is
    deleted, as Whereby does.

    ``end_room(name, message)`` closes a room of the room server; ``clock`` gives
    the time (tests move it). :meth:`sweep` does one round; :meth:`run` repeats it.
    """

    def __init__(
        self,
        db: Callable[[], Database | None],
        end_room: Callable[[str, str], Any],
        clock: Callable[[], datetime],
        every: float = SWEEP_EVERY,
    ):
        self._db = db
        self._end_room = end_room
        self.clock = clock
        self.every = every
        self._task: asyncio.Task | None = None

    async def sweep(self) -> tuple[list[str], list[str]]:
        """Close rooms of ended meetings and delete meetings ended over an hour ago:
        ``(closed room names, deleted meeting ids)``."""
        db = self._db()
        if db is None:
            return [], []
        now = self.clock()
        closing, deleting = await asyncio.to_thread(_due, db, now)
        for name in closing:
            await self._end_room(name, "this meeting has ended")
        for _, name in deleting:
            await self._end_room(name, "this meeting has ended")
        if closing or deleting:
            await asyncio.to_thread(_mark, db, closing, [m for m, _ in deleting], now)
        for name in closing:
            log.info("meeting room %r closed: its end date has passed", name)
        return closing, [m for m, _ in deleting]

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # a database hiccup must not stop the clock
                log.exception("ending meetings on time failed; trying again")
            await asyncio.sleep(self.every)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _due(db: Database, now: datetime) -> tuple[list[str], list[tuple[str, str]]]:
    from ..control import MeetingStore

    store = MeetingStore()
    with db.session(readonly=True) as s:
        closing = [m.room_name for m in store.due_to_close(s, now)]
        deleting = [(m.meeting_id, m.room_name) for m in store.due_to_delete(s, now)]
    return closing, deleting


def _mark(db: Database, closing: list[str], deleting: list[str], now: datetime) -> None:
    from ..control import MeetingStore

    store = MeetingStore()
    with db.session() as s:
        for name in closing:
            row = store.by_room(s, name)
            if row is not None:
                store.close(s, row.meeting_id, now)
        for meeting_id in deleting:
            if store.delete(s, meeting_id, now):
                log.info("meeting %s deleted: it ended over an hour ago", meeting_id)


__all__ = [
    "BODY_FIELDS",
    "MEETING_FIELDS",
    "MeetingClock",
    "MeetingRequest",
    "MeetingRoom",
    "NOT_HONOURED",
    "ROOM_MODES",
    "ROOM_NAME_PATTERNS",
    "lookup_room",
    "meeting_settings",
    "new_room_name",
    "parse_body",
    "parse_fields",
    "parse_meeting_request",
    "shown_settings",
]
