"""The configuration file: organization defaults and how this recfw runs.

A TOML file (``recfw.toml``)::

    [recording]                 # organization defaults, REST shape
    type = "cloud"
    startTrigger = "automatic"
    maxDuration = 86400         # seconds

    [recording.destination]
    provider = "s3"
    bucket = "my-bucket/meetings"
    accessKeyId = "AKIA..."     # or RECFW_ACCESS_KEY_ID
    # accessKeySecret: better from RECFW_ACCESS_KEY_SECRET than in the file
    fileFormat = "mkv"

    [encoder]                   # options for the file format's encoder
    crf = 23

    [server]                    # the room server of ``recfw run``
    host = "127.0.0.1"
    port = 8080
    iceAddresses = ["127.0.0.1"]
    # apiKey: enables the meetings API; better from RECFW_API_KEY than in the file
    # database = "postgresql://user@host/recfw"   # or RECFW_DATABASE_URL; default:
    #                                             # SQLite in the data folder
    # dataDir = ".recfw"          # or RECFW_DATA_DIR: spool, database, secret key
    # apiRateLimit = 600          # requests a minute per API key (0: no limit)

    # allowedDestinations: private/loopback hosts recfw may connect to (docs/settings.md)
    # allowedDestinations = ["10.0.0.0/8", "minio.internal:9000"]

    [storage]                   # how long storage may take (docs/settings.md)
    connectTimeout = 5          # seconds
    readTimeout = 20            # seconds
    attempts = 3
    maxPeople = 12              # people in a "group" room ("normal" rooms hold 4)
    videoWidth = 1280           # what browsers capture and send (forwarded as is)
    videoHeight = 720
    videoFps = 30
    videoCodec = "VP8"          # or "H264": every participant of a room uses it
    maxTiles = 16               # tiles of the composite; more people: the active grid
    minTileSeconds = 3          # a tile of the active grid stays at least this long

    [workers]                   # recording jobs on Redis (docs/architecture.md)
    queue = "redis://redis.internal:6379/0"   # or RECFW_QUEUE_URL; default: local
    # capacity = 1.6            # cores a worker on this host offers (default 80%)

    [rooms]                     # where rooms' media goes (docs/rooms.md)
    backend = "builtin"         # or "janus": media through a Janus VideoRoom
    janusUrl = "ws://127.0.0.1:8188"
    # janusApiSecret: Janus's api_secret; better from RECFW_JANUS_API_SECRET

    [[webhooks]]
    url = "https://example.com/hooks/recfw"
    secret = "..."              # or RECFW_WEBHOOK_SECRET
    events = ["recording.finished"]   # default: all

Without a file, :data:`recfw.recording.EMBEDDED_DEFAULT` applies: a local
``./recordings`` folder, Matroska, automatic start.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import FieldError, SettingsError
from .events import EVENT_TYPES
from .queue.settings import WorkerSettings, parse_workers
from .recording import EMBEDDED_DEFAULT, RecordingOverride
from .secrets import Secret
from .settings.merging import merge, with_env_credentials
from .settings.parsing import parse_recording
from .storage import TransferOptions, parse_transfer_options

_TOP_LEVEL = ("recording", "encoder", "server", "webhooks", "storage", "workers", "rooms")
_SERVER_FIELDS = {
    "host": str,
    "port": int,
    "iceAddresses": list,
    "publicUrl": str,
    "apiKey": str,
    "database": str,
    "dataDir": str,
    "allowedDestinations": list,
    "apiRateLimit": int,
    "maxPeople": int,
    "videoWidth": int,
    "videoHeight": int,
    "videoFps": int,
    "videoCodec": str,
    "maxTiles": int,
    "minTileSeconds": int,
    "mediaTimeout": float,
}
#: ``[server]`` integer fields: (attribute, lowest, highest).
_SERVER_RANGES = {
    "maxPeople": ("max_people", 2, 50),
    "videoWidth": ("video_width", 160, 3840),
    "videoHeight": ("video_height", 120, 2160),
    "videoFps": ("video_fps", 1, 60),
    "maxTiles": ("max_tiles", 2, 49),
    "minTileSeconds": ("min_tile_seconds", 0, 60),
}
API_KEY_ENV = "RECFW_API_KEY"
_WEBHOOK_FIELDS = ("url", "secret", "events")
_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", float: "a number"}


@dataclass(frozen=True)
class ServerSettings:
    """Where the room server listens, and which addresses it offers as ICE candidates.

    ``api_key`` (``[server] apiKey`` or ``RECFW_API_KEY``) enables the meetings
    API; ``None`` leaves it disabled.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    ice_addresses: tuple[str, ...] = ("127.0.0.1",)
    public_url: str | None = None
    api_key: Secret | None = None
    #: ``[server] database``: the control plane's database URL (see docs/database.md).
    database: str | None = field(default=None, repr=False)  # may hold a password
    #: ``[server] dataDir``: recfw's data folder (spool, SQLite database, secret key).
    data_dir: str | None = None
    #: ``allowedDestinations``: non-public hosts recfw may connect to (:mod:`recfw.netguard`).
    allowed_destinations: tuple[str, ...] = ()
    #: ``[server] apiRateLimit``: requests per minute per API key (0: no limit).
    api_rate_limit: int = 600
    #: People in a ``group`` room (``normal`` rooms hold 4).
    max_people: int = 12
    #: What browsers capture and send (getUserMedia constraints; the server forwards it as is).
    video_width: int = 1280
    video_height: int = 720
    video_fps: int = 30
    #: The one video codec of every room (all participants send and receive it): VP8 or H264.
    video_codec: str = "VP8"
    #: Tiles of the recording's composite; with more people, the active grid (docs/rooms.md).
    max_tiles: int = 16
    #: Seconds a tile of the active grid stays at least once shown.
    min_tile_seconds: int = 3
    #: Seconds without a packet from a connected participant before their media counts
    #: as stopped (they are told to reconnect; see docs/rooms.md).
    media_timeout: float = 5.0

    def grid_layout(self) -> dict[str, int]:
        """The composite's layout settings as a recorder gets them (``maxTiles``, ...)."""
        return {"maxTiles": self.max_tiles, "minTileSeconds": self.min_tile_seconds}


ROOM_BACKENDS = ("builtin", "janus")
_ROOMS_FIELDS = ("backend", "janusUrl", "janusApiSecret")
JANUS_SECRET_ENV = "RECFW_JANUS_API_SECRET"


@dataclass(frozen=True)
class RoomsSettings:
    """``[rooms]``: where rooms' media goes.

    ``backend = "builtin"`` (default): recfw's own forwarding server (aiortc).
    ``"janus"``: a Janus VideoRoom at ``janus_url`` (its WebSocket API), with
    ``janus_api_secret`` (``[rooms] janusApiSecret`` or ``RECFW_JANUS_API_SECRET``).
    """

    backend: str = "builtin"
    janus_url: str = "ws://127.0.0.1:8188"
    janus_api_secret: Secret | None = None


@dataclass(frozen=True)
class WebhookEndpoint:
    """A URL that receives signed event envelopes."""

    url: str
    secret: Secret
    events: tuple[str, ...] | None = None  # None: every event type

    def wants(self, event_type: str) -> bool:
        return self.events is None or event_type in self.events


@dataclass(frozen=True)
class Config:
    """The running configuration. ``recording`` are the organization defaults.

    The defaults are an override laid over :data:`recfw.recording.EMBEDDED_DEFAULT`,
    not yet checked against the plugins: :func:`recfw.settings.effective` makes
    a recording's settings from them.
    """

    recording: RecordingOverride = EMBEDDED_DEFAULT
    encoder: Mapping[str, Any] = field(default_factory=dict)
    server: ServerSettings = ServerSettings()
    webhooks: tuple[WebhookEndpoint, ...] = ()
    path: Path | None = None
    storage: TransferOptions = TransferOptions()
    #: ``[workers]``: the Redis job queue and admission (:mod:`recfw.queue.settings`).
    workers: WorkerSettings = WorkerSettings()

    rooms: RoomsSettings = RoomsSettings()


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _fits(value: Any, expected: type) -> bool:
    """``value`` is an ``expected`` (a bool is not an integer here; an integer is a number)."""
    if expected is float:
        expected = (int, float)  # type: ignore[assignment]
    return isinstance(value, expected) and not isinstance(value, bool)


def _server(data: Any, environ: Mapping[str, str], errors: list[FieldError]) -> ServerSettings:
    env_key = environ.get(API_KEY_ENV) or None
    if data is None:
        return ServerSettings(api_key=Secret(env_key) if env_key else None)
    if not isinstance(data, Mapping):
        errors.append(FieldError("server", "must be a table"))
        return ServerSettings()
    values: dict[str, Any] = {"api_key": Secret(env_key) if env_key else None}
    table: Mapping[str, Any] = data
    for key, value in table.items():
        expected = _SERVER_FIELDS.get(key)
        if expected is None:
            errors.append(
                FieldError(f"server.{key}", f"unknown field (known: {', '.join(_SERVER_FIELDS)})")
            )
        elif not _fits(value, expected):
            errors.append(
                FieldError(
                    f"server.{key}",
                    f"must be {_TYPE_NAMES[expected]}, not {type(value).__name__}",
                )
            )
        elif key == "port" and not 0 <= value <= 65535:
            errors.append(FieldError("server.port", f"must be 0..65535, not {value}"))
        elif key == "iceAddresses":
            if not value or not all(isinstance(a, str) and a for a in value):
                errors.append(
                    FieldError("server.iceAddresses", "must be a non-empty list of addresses")
                )
            else:
                bad = [a for a in value if not _is_ip(a)]
                if bad:
                    errors.append(
                        FieldError(
                            "server.iceAddresses",
                            f"must list IP addresses (ICE offers no host names): "
                            f"{bad[0]!r} is not an IP address",
                        )
                    )
                else:
                    values["ice_addresses"] = tuple(value)
        elif key == "publicUrl":
            if not value.startswith(("http://", "https://")):
                errors.append(FieldError("server.publicUrl", "must be an http:// or https:// URL"))
            else:
                values["public_url"] = value
        elif key == "allowedDestinations":
            from .netguard import allowed_errors

            found = allowed_errors(value)
            errors.extend(found)
            if not found:
                values["allowed_destinations"] = tuple(value)
        elif key in _SERVER_RANGES:
            attribute, low, high = _SERVER_RANGES[key]
            if not low <= value <= high:
                errors.append(FieldError(f"server.{key}", f"must be {low}..{high}, not {value}"))
            else:
                values[attribute] = value
        elif key == "mediaTimeout":
            if not 0.5 <= value <= 120:
                errors.append(
                    FieldError("server.mediaTimeout", f"must be 0.5..120 seconds, not {value}")
                )
            else:
                values["media_timeout"] = float(value)
        elif key == "videoCodec":
            if value.upper() not in ("VP8", "H264"):
                errors.append(
                    FieldError("server.videoCodec", f"must be VP8 or H264, not {value!r}")
                )
            else:
                values["video_codec"] = value.upper()
        elif key == "apiKey":
            if not value.strip():
                errors.append(
                    FieldError(
                        "server.apiKey",
                        "must not be empty (leave it out to disable the meetings API)",
                    )
                )
            else:
                values["api_key"] = Secret(value)
        elif key == "database":
            if not value.strip():
                errors.append(
                    FieldError("server.database", "must not be empty (leave it out for SQLite)")
                )
            else:
                values["database"] = value.strip()
        elif key == "apiRateLimit":
            if value < 0:
                errors.append(
                    FieldError(
                        "server.apiRateLimit", "must be 0 (no limit) or more requests a minute"
                    )
                )
            else:
                values["api_rate_limit"] = value
        elif key == "dataDir":
            if not value.strip():
                errors.append(FieldError("server.dataDir", "must not be empty"))
            else:
                values["data_dir"] = value
        else:
            values[key] = value
    return ServerSettings(**values)


def _rooms(data: Any, environ: Mapping[str, str], errors: list[FieldError]) -> RoomsSettings:
    env_secret = environ.get(JANUS_SECRET_ENV) or None
    secret = Secret(env_secret) if env_secret else None
    if data is None:
        return RoomsSettings(janus_api_secret=secret)
    if not isinstance(data, Mapping):
        errors.append(FieldError("rooms", "must be a table"))
        return RoomsSettings()
    values: dict[str, Any] = {"janus_api_secret": secret}
    for key, value in data.items():
        if key not in _ROOMS_FIELDS:
            errors.append(
                FieldError(f"rooms.{key}", f"unknown field (known: {', '.join(_ROOMS_FIELDS)})")
            )
        elif not isinstance(value, str):
            errors.append(
                FieldError(f"rooms.{key}", f"must be a string, not {type(value).__name__}")
            )
        elif key == "backend":
            if value not in ROOM_BACKENDS:
                errors.append(
                    FieldError(
                        "rooms.backend",
                        f"must be one of {', '.join(ROOM_BACKENDS)}, not {value!r}",
                    )
                )
            else:
                values["backend"] = value
        elif key == "janusUrl":
            problem = _ws_url_problem(value)
            if problem:
                errors.append(FieldError("rooms.janusUrl", problem))
            else:
                values["janus_url"] = value
        elif not value.strip():
            errors.append(
                FieldError(
                    "rooms.janusApiSecret", "must not be empty (leave it out if Janus has none)"
                )
            )
        else:
            values["janus_api_secret"] = Secret(value)
    return RoomsSettings(**values)


def _ws_url_problem(url: str) -> str | None:
    """What is wrong with a Janus WebSocket URL (``None``: nothing)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return f"must be a ws:// or wss:// URL (Janus's WebSocket API), not {url!r}"
    if port is None:
        return "must name the port (Janus's WebSocket API listens on 8188 by default)"
    return None


def _webhooks(
    data: Any, environ: Mapping[str, str], errors: list[FieldError]
) -> tuple[WebhookEndpoint, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        errors.append(FieldError("webhooks", "must be an array of tables ([[webhooks]])"))
        return ()
    endpoints = []
    for i, item in enumerate(data):
        name = f"webhooks[{i}]"
        if not isinstance(item, Mapping):
            errors.append(FieldError(name, "must be a table"))
            continue
        for key in item:
            if key not in _WEBHOOK_FIELDS:
                errors.append(
                    FieldError(
                        f"{name}.{key}", f"unknown field (known: {', '.join(_WEBHOOK_FIELDS)})"
                    )
                )
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors.append(FieldError(f"{name}.url", "must be an http:// or https:// URL"))
            continue
        secret = item.get("secret") or environ.get("RECFW_WEBHOOK_SECRET")
        if secret is not None and not isinstance(secret, str):
            errors.append(FieldError(f"{name}.secret", "must be a string"))
            continue
        if not secret:
            errors.append(FieldError(f"{name}.secret", "is required (or set RECFW_WEBHOOK_SECRET)"))
            continue
        events = item.get("events")
        if events is not None and not (
            isinstance(events, list) and all(isinstance(e, str) for e in events)
        ):
            errors.append(FieldError(f"{name}.events", "must be a list of event types"))
            continue
        unknown = [e for e in events or () if e not in EVENT_TYPES]
        if unknown:
            errors.append(
                FieldError(
                    f"{name}.events",
                    f"unknown event type {unknown[0]!r} (known: {', '.join(EVENT_TYPES)})",
                )
            )
            continue
        endpoints.append(
            WebhookEndpoint(url, Secret(secret), tuple(events) if events is not None else None)
        )
    return tuple(endpoints)


def parse_config(
    data: Mapping[str, Any], environ: Mapping[str, str] | None = None, path: Path | None = None
) -> Config:
    """Build a :class:`Config` from parsed TOML; raise ``SettingsError`` listing every problem."""
    environ = os.environ if environ is None else environ
    errors: list[FieldError] = []
    for key in data:
        if key not in _TOP_LEVEL:
            errors.append(FieldError(key, f"unknown section (known: {', '.join(_TOP_LEVEL)})"))
    recording = EMBEDDED_DEFAULT
    try:
        recording = merge(EMBEDDED_DEFAULT, parse_recording(data.get("recording")))
    except SettingsError as exc:
        errors.extend(exc.errors)
    encoder = data.get("encoder", {})
    if not isinstance(encoder, Mapping):
        errors.append(FieldError("encoder", "must be a table"))
        encoder = {}
    server = _server(data.get("server"), environ, errors)
    webhooks = _webhooks(data.get("webhooks"), environ, errors)
    storage = parse_transfer_options(data.get("storage"), errors)
    workers = parse_workers(data.get("workers"), environ, errors)
    rooms = _rooms(data.get("rooms"), environ, errors)
    if errors:
        raise SettingsError(errors)
    return Config(
        recording=with_env_credentials(recording, environ),
        encoder=dict(encoder),
        server=server,
        webhooks=webhooks,
        path=path,
        storage=storage,
        workers=workers,
        rooms=rooms,
    )


def load_config(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read a config file (or the embedded default for ``None``)."""
    environ = os.environ if environ is None else environ
    if path is None:
        return parse_config({}, environ)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(
            [FieldError(str(path), f"cannot read the file: {exc.strerror}")]
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([FieldError(str(path), f"not valid TOML: {exc}")]) from None
    return parse_config(data, environ, path)
