"""Recording settings in the REST shape, their merge, and their validation.

The shape (DESIGN.md, "The REST shape")::

    recording: {
      type: "none" | "local" | "cloud",
      destination: {provider, bucket, accessKeyId, accessKeySecret, fileFormat,
                    region?, endpointUrl?} | null,
      startTrigger: "none" | "prompt" | "automatic" | "automatic-2nd-participant" | null,
      maxDuration: seconds | null
    }

An organization sets defaults once; a meeting may carry its own ``recording``
object in which ``null`` (or a missing field) means "inherit the default".
:func:`parse_recording` reads either (keeping ``None`` for what is unset),
:func:`merge` lays a meeting's override over the defaults, and
:func:`validate` checks the effective result against the registered plugins,
so that a plugin's new format or provider is valid once it is installed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from .defaults import DEFAULT_LOCAL_FOLDER, DEFAULT_MAX_DURATION
from .errors import FieldError, SettingsError, describe
from .secrets import Secret, mask_key_id, mask_secrets, strip_url_credentials

if TYPE_CHECKING:
    from .manager import Plugins

RECORDING_TYPES = ("none", "local", "cloud")

# REST name -> attribute name, for the destination object.
_DESTINATION_FIELDS = {
    "provider": "provider",
    "bucket": "bucket",
    "accessKeyId": "access_key_id",
    "accessKeySecret": "access_key_secret",
    "fileFormat": "file_format",
    "region": "region",
    "endpointUrl": "endpoint_url",
    "authenticationType": "authentication_type",
    "oidcRoleArn": "oidc_role_arn",
}
#: ``destination.authenticationType`` values (Whereby's): keys, or an IAM role to assume.
AUTHENTICATION_TYPES = ("accessKey", "roleBased")
_RECORDING_FIELDS = {
    "type": "type",
    "destination": "destination",
    "startTrigger": "start_trigger",
    "maxDuration": "max_duration",
}


@dataclass(frozen=True)
class Destination:
    """Where files go. ``bucket`` may carry a sub-folder: ``"my-bucket/sub/folder"``.

    For the ``local`` provider, ``bucket`` is a folder on this machine. Any field
    may be ``None`` in an override (inherit); the effective destination after
    :func:`merge` has ``provider``, ``bucket`` and ``file_format`` set.
    """

    provider: str | None = None
    bucket: str | None = None
    access_key_id: str | None = None
    access_key_secret: Secret | None = None
    file_format: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    #: ``accessKey`` (the default) or ``roleBased`` (assume ``oidc_role_arn``; no keys).
    authentication_type: str | None = None
    oidc_role_arn: str | None = None

    @property
    def role_based(self) -> bool:
        """Whether the destination is reached through an IAM role, not access keys."""
        return self.authentication_type == "roleBased"

    @property
    def bucket_name(self) -> str:
        """The bucket without its sub-folder."""
        return (self.bucket or "").strip("/").split("/", 1)[0]

    @property
    def prefix(self) -> str:
        """The sub-folder inside the bucket ("" for none), without slashes at the ends."""
        parts = (self.bucket or "").strip("/").split("/", 1)
        return parts[1].strip("/") if len(parts) > 1 else ""

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """The REST shape. Secrets (and URL credentials) are masked unless ``reveal`` is true."""
        out: dict[str, Any] = {}
        for rest, attr in _DESTINATION_FIELDS.items():
            value = getattr(self, attr)
            if value is None:
                continue
            if attr == "access_key_secret":
                value = value.reveal() if reveal else Secret.MASK
            elif attr == "access_key_id" and not reveal:
                value = mask_key_id(value)
            elif attr in ("endpoint_url", "bucket") and not reveal:
                value = strip_url_credentials(value)  # a URL may carry user:password@
            out[rest] = value
        return out


@dataclass(frozen=True)
class RecordingSettings:
    """A ``recording`` object; ``None`` fields inherit from the defaults."""

    type: str | None = None
    destination: Destination | None = None
    start_trigger: str | None = None
    max_duration: float | None = None

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        return {
            "type": self.type,
            "destination": self.destination.to_dict(reveal=reveal) if self.destination else None,
            "startTrigger": self.start_trigger,
            "maxDuration": self.max_duration,
        }


#: The embedded default: a local folder, no account needed.
EMBEDDED_DEFAULT = RecordingSettings(
    type="local",
    destination=Destination(provider="local", bucket=DEFAULT_LOCAL_FOLDER, file_format="mkv"),
    start_trigger="automatic",
    max_duration=DEFAULT_MAX_DURATION,
)


# --- parsing ---------------------------------------------------------------


def _string(value: Any, name: str, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, f"must be a string, not {type(value).__name__}"))
        return None
    return value


def _parse_destination(data: Any, prefix: str, errors: list[FieldError]) -> Destination | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        errors.append(FieldError(prefix, "must be an object or null"))
        return None
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}"
        attr = _DESTINATION_FIELDS.get(key)
        if attr is None:
            known = ", ".join(_DESTINATION_FIELDS)
            errors.append(FieldError(name, f"unknown field (known: {known})"))
            continue
        if attr == "access_key_secret":
            if value is not None and not isinstance(value, str | Secret):
                errors.append(FieldError(name, "must be a string"))
            elif value is not None:
                values[attr] = Secret(value)
            continue
        values[attr] = _string(value, name, errors)
    return Destination(**values)


def parse_recording(data: Any, prefix: str = "recording") -> RecordingSettings:
    """Read a ``recording`` object (REST shape). Raise ``SettingsError`` on bad shape.

    Only the shape and types are checked here; values that depend on installed
    plugins (trigger, format, provider) are checked by :func:`validate`.
    """
    errors: list[FieldError] = []
    if data is None:
        return RecordingSettings()
    if not isinstance(data, Mapping):
        raise SettingsError([FieldError(prefix, "must be an object or null")])
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}"
        attr = _RECORDING_FIELDS.get(key)
        if attr is None:
            known = ", ".join(_RECORDING_FIELDS)
            errors.append(FieldError(name, f"unknown field (known: {known})"))
        elif attr == "destination":
            values[attr] = _parse_destination(value, name, errors)
        elif attr == "max_duration":
            values[attr] = _parse_duration(value, name, errors)
        else:
            values[attr] = _string(value, name, errors)
    if errors:
        raise SettingsError(errors)
    return RecordingSettings(**values)


def _parse_duration(value: Any, name: str, errors: list[FieldError]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(FieldError(name, "must be a number of seconds"))
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond float range (JSON allows any size)
        seconds = math.inf
    if not math.isfinite(seconds) or seconds <= 0:
        shown = "a number too large" if isinstance(value, int) and seconds == math.inf else value
        errors.append(FieldError(name, f"must be a positive number of seconds, not {shown!r}"))
        return None
    return seconds


# --- merging ---------------------------------------------------------------


def _merge_destination(default: Destination | None, override: Destination | None) -> Destination:
    if default is None:
        return override or Destination()
    if override is None:
        return default
    if override.provider not in (None, default.provider):
        # Another provider: nothing of the default destination (least of all its
        # credentials) carries over, except the file format.
        return replace(override, file_format=override.file_format or default.file_format)
    merged = {
        f.name: getattr(override, f.name)
        if getattr(override, f.name) is not None
        else getattr(default, f.name)
        for f in fields(Destination)
    }
    if override.endpoint_url not in (None, default.endpoint_url) or override.role_based:
        # Another endpoint, or a role to assume: the organization's keys are not sent there.
        merged["access_key_id"] = override.access_key_id
        merged["access_key_secret"] = override.access_key_secret
    return Destination(**merged)


def merge(default: RecordingSettings, override: RecordingSettings | None) -> RecordingSettings:
    """The effective settings of a meeting: ``override``'s set fields over ``default``.

    ``None`` inherits. A destination with another ``provider`` replaces the
    default one entirely (only ``fileFormat`` is inherited); one with another
    ``endpointUrl`` does not inherit the default credentials.
    """
    if override is None:
        return default
    return RecordingSettings(
        type=override.type if override.type is not None else default.type,
        destination=_merge_destination(default.destination, override.destination),
        start_trigger=override.start_trigger
        if override.start_trigger is not None
        else default.start_trigger,
        max_duration=override.max_duration
        if override.max_duration is not None
        else default.max_duration,
    )


def with_env_credentials(
    settings: RecordingSettings, environ: Mapping[str, str]
) -> RecordingSettings:
    """Fill missing credentials from ``RECFW_ACCESS_KEY_ID`` / ``RECFW_ACCESS_KEY_SECRET``."""
    dest = settings.destination
    if dest is None:
        return settings
    key_id = dest.access_key_id or environ.get("RECFW_ACCESS_KEY_ID") or None
    secret = dest.access_key_secret
    if secret is None and environ.get("RECFW_ACCESS_KEY_SECRET"):
        secret = Secret(environ["RECFW_ACCESS_KEY_SECRET"])
    return replace(
        settings, destination=replace(dest, access_key_id=key_id, access_key_secret=secret)
    )


# --- validation ------------------------------------------------------------


def _one_of(value: str | None, known: list[str], name: str, what: str) -> FieldError | None:
    if value is None:
        return FieldError(name, f"is required (one of: {', '.join(known) or 'none installed'})")
    if value not in known:
        return FieldError(
            name, f"unknown {what} {value!r} (installed: {', '.join(known) or 'none'})"
        )
    return None


def validate(
    settings: RecordingSettings, plugins: Plugins, prefix: str = "recording"
) -> list[FieldError]:
    """Every problem of effective ``settings``, each naming its field (secret masked)."""
    secret = settings.destination.access_key_secret if settings.destination else None
    return _scrub(_problems(settings, plugins, prefix), secret)


def _problems(settings: RecordingSettings, plugins: Plugins, prefix: str) -> list[FieldError]:
    errors: list[FieldError] = []

    def check(error: FieldError | None) -> None:
        if error is not None:
            errors.append(error)

    if settings.type not in RECORDING_TYPES:
        errors.append(
            FieldError(
                f"{prefix}.type",
                f"must be one of {', '.join(RECORDING_TYPES)}, not {settings.type!r}",
            )
        )
    check(
        _one_of(
            settings.start_trigger, sorted(plugins.triggers), f"{prefix}.startTrigger", "trigger"
        )
    )
    if settings.max_duration is not None and settings.max_duration <= 0:
        errors.append(FieldError(f"{prefix}.maxDuration", "must be positive"))
    if settings.type in (None, "none") or settings.type not in RECORDING_TYPES:
        return errors

    dest = settings.destination or Destination()
    dprefix = f"{prefix}.destination"
    check(
        _one_of(dest.file_format, sorted(plugins.encoders), f"{dprefix}.fileFormat", "file format")
    )
    provider_error = _one_of(
        dest.provider, sorted(plugins.sinks), f"{dprefix}.provider", "provider"
    )
    check(provider_error)
    if settings.type == "local" and dest.provider not in (None, "local"):
        errors.append(
            FieldError(
                f"{dprefix}.provider",
                f'type "local" stores in a local folder, not {dest.provider!r}',
            )
        )
    if settings.type == "cloud" and dest.provider == "local":
        errors.append(
            FieldError(f"{dprefix}.provider", 'is "local"; use type "local" for a local folder')
        )
    if not dest.bucket:
        errors.append(FieldError(f"{dprefix}.bucket", "is required"))
    if provider_error is None:
        sink = plugins.sinks[dest.provider]
        errors += _authentication_problems(dest, dprefix)
        if getattr(sink, "needs_credentials", False) and not dest.role_based:
            if not dest.access_key_id:
                errors.append(
                    FieldError(
                        f"{dprefix}.accessKeyId",
                        f"is required for provider {dest.provider!r} (or set RECFW_ACCESS_KEY_ID)",
                    )
                )
            if not dest.access_key_secret:
                errors.append(
                    FieldError(
                        f"{dprefix}.accessKeySecret",
                        f"is required for provider {dest.provider!r} "
                        "(or set RECFW_ACCESS_KEY_SECRET)",
                    )
                )
        if dest.bucket:
            errors += _sink_problems(sink, dest, plugins, dprefix)
    from .netguard import destination_errors  # SSRF: endpointUrl must be public or allowed

    errors += destination_errors(dest, dprefix, errors)
    return errors


_ROLE_ARN = re.compile(r"arn:[a-z0-9-]+:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


def _authentication_problems(dest: Destination, dprefix: str) -> list[FieldError]:
    """``authenticationType`` must be known; ``roleBased`` needs an IAM role ARN."""
    kind = dest.authentication_type
    if kind is not None and kind not in AUTHENTICATION_TYPES:
        return [
            FieldError(
                f"{dprefix}.authenticationType",
                f"must be one of {', '.join(AUTHENTICATION_TYPES)}, not {kind!r}",
            )
        ]
    if kind == "roleBased":
        if not dest.oidc_role_arn:
            return [
                FieldError(
                    f"{dprefix}.oidcRoleArn", 'is required when authenticationType is "roleBased"'
                )
            ]
        if not _ROLE_ARN.fullmatch(dest.oidc_role_arn):
            return [
                FieldError(
                    f"{dprefix}.oidcRoleArn",
                    "must be an IAM role ARN (arn:aws:iam::123456789012:role/name)",
                )
            ]
    return []


def _owner(plugins: Plugins, kind: str, item_name: str) -> str | None:
    """The name of the plugin whose ``kind`` ``item_name`` is in use (the last to register it)."""
    owner = None
    for plugin_name, info in getattr(plugins, "info", {}).items():
        if item_name in info.provides.get(kind, ()):
            owner = plugin_name
    return owner


def _sink_problems(
    sink: Any, dest: Destination, plugins: Plugins, dprefix: str
) -> list[FieldError]:
    """The sink's own checks, under the destination's field names.

    A sink whose ``validate`` raises (or answers something other than field
    errors) is a broken plugin: that becomes one error on ``provider`` naming
    the plugin and what went wrong, instead of an exception in every command.
    """
    try:
        found = list(sink.validate(dest))
        bad = next((e for e in found if not isinstance(e, FieldError)), None)
        if bad is not None:
            raise TypeError(f"validate() answered {type(bad).__name__}, not FieldError")
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must not crash every command
        owner = _owner(plugins, "sinks", dest.provider or "")
        plugin = f" (plugin {owner!r})" if owner and owner != dest.provider else ""
        detail = describe(exc)
        return [
            FieldError(
                f"{dprefix}.provider",
                f"the {dest.provider!r} sink{plugin} failed to check the destination: {detail}",
            )
        ]
    errors = []
    for error in found:
        field_name = error.field if error.field.startswith(dprefix) else f"{dprefix}.{error.field}"
        errors.append(FieldError(field_name, error.message))
    return errors


def _scrub(errors: list[FieldError], secret: Secret | None) -> list[FieldError]:
    """Mask the secret and URL credentials in messages that quote a value (a sink's, ...)."""
    out = []
    for e in errors:
        message = mask_secrets(e.message, secret)
        out.append(e if message == e.message else FieldError(e.field, message))
    return out


def validate_encoder_options(
    file_format: str | None,
    options: Mapping[str, Any] | None,
    plugins: Plugins,
    prefix: str = "encoder",
) -> list[FieldError]:
    """Every problem of the ``[encoder]`` options for ``file_format``, each naming its field.

    Asks the format's encoder through its optional ``validate_options(options)``
    (a list of :class:`FieldError` named by option, e.g. ``"crf"``, reported as
    ``encoder.crf``). An encoder without that method is not checked here (its
    ``open`` still rejects bad options); an unknown or unset ``file_format`` gives
    nothing (:func:`validate` reports it as ``recording.destination.fileFormat``).
    An encoder whose check raises gives one error on ``prefix`` naming the format.
    """
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        return [FieldError(prefix, "must be a table of encoder options")]
    encoder = plugins.encoders.get(file_format) if file_format else None
    check = getattr(encoder, "validate_options", None)
    if not callable(check):
        return []
    try:
        found = list(check(options))
        bad = next((e for e in found if not isinstance(e, FieldError)), None)
        if bad is not None:
            raise TypeError(f"validate_options() answered {type(bad).__name__}, not FieldError")
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is reported, not raised
        owner = _owner(plugins, "encoders", file_format or "")
        plugin = f" (plugin {owner!r})" if owner and owner != file_format else ""
        detail = describe(exc)
        return _scrub(
            [
                FieldError(
                    prefix,
                    f"the {file_format!r} encoder{plugin} failed to check its options: {detail}",
                )
            ],
            None,
        )
    errors = []
    for error in found:
        name = error.field
        if not (name == prefix or name.startswith(f"{prefix}.")):
            name = f"{prefix}.{name}" if name else prefix
        errors.append(FieldError(name, error.message))
    return _scrub(errors, None)


def effective(
    default: RecordingSettings,
    override: RecordingSettings | None,
    plugins: Plugins,
    environ: Mapping[str, str] | None = None,
) -> RecordingSettings:
    """Fill the defaults' credentials from the environment, merge, validate; raise on any problem.

    The environment's credentials belong to the organization defaults: like the
    credentials in the defaults, they never go to a meeting's other provider or
    other endpoint.
    """
    import os

    default = with_env_credentials(default, os.environ if environ is None else environ)
    settings = merge(default, override)
    errors = validate(settings, plugins)
    if errors:
        raise SettingsError(errors)
    return settings


__all__ = [
    "Destination",
    "RecordingSettings",
    "EMBEDDED_DEFAULT",
    "parse_recording",
    "merge",
    "validate",
    "effective",
    "with_env_credentials",
    "strip_url_credentials",
    "validate_encoder_options",
]
