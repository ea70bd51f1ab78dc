"""The recording settings' data, in the REST shape: overrides and effective settings.

Two kinds of the same shape::

    recording: {
      type: "none" | "local" | "cloud",
      destination: {provider, bucket, accessKeyId, accessKeySecret, fileFormat,
                    region?, endpointUrl?} | null,
      startTrigger: "none" | "prompt" | "automatic" | "automatic-2nd-participant" | null,
      maxDuration: seconds | null
    }

:class:`RecordingOverride` (with :class:`DestinationOverride`) is what an
organization's defaults or a meeting's ``recording`` object say: every field
may be ``None``, which means "inherit". :class:`RecordingSettings` (with
:class:`Destination`) is what a recording runs with once the override was laid
over the defaults and checked against the installed plugins
(:func:`recfw.settings.effective`): every field has a value. Only the genuinely
optional destination fields (credentials, ``region``, ``endpointUrl``) may be
``None``, and there ``None`` means "not set", never "inherit".

This module holds data only: no parsing, no plugins. Sinks receive a
:class:`Destination`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .defaults import DEFAULT_LOCAL_FOLDER, DEFAULT_MAX_DURATION
from .secrets import Secret, mask_key_id, strip_url_credentials

RECORDING_TYPES = ("none", "local", "cloud")

#: REST name -> attribute name, for the destination object.
DESTINATION_FIELDS = {
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
#: REST name -> attribute name, for the recording object.
RECORDING_FIELDS = {
    "type": "type",
    "destination": "destination",
    "startTrigger": "start_trigger",
    "maxDuration": "max_duration",
}


def _bucket_name(bucket: str | None) -> str:
    return (bucket or "").strip("/").split("/", 1)[0]


def _prefix(bucket: str | None) -> str:
    parts = (bucket or "").strip("/").split("/", 1)
    return parts[1].strip("/") if len(parts) > 1 else ""


def _destination_dict(destination: Any, reveal: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rest, attr in DESTINATION_FIELDS.items():
        value = getattr(destination, attr)
        if value is None or value == "":
            continue
        if attr == "access_key_secret":
            value = value.reveal() if reveal else Secret.MASK
        elif attr == "access_key_id" and not reveal:
            value = mask_key_id(value)
        elif attr in ("endpoint_url", "bucket") and not reveal:
            value = strip_url_credentials(value)  # a URL may carry user:password@
        out[rest] = value
    return out


class _Place:
    """What an override and an effective destination both say about their place."""

    bucket: str | None
    authentication_type: str | None

    @property
    def role_based(self) -> bool:
        """Whether the destination is reached through an IAM role, not access keys."""
        return self.authentication_type == "roleBased"

    @property
    def bucket_name(self) -> str:
        """The bucket without its sub-folder."""
        return _bucket_name(self.bucket)

    @property
    def prefix(self) -> str:
        """The sub-folder inside the bucket ("" for none), without slashes at the ends."""
        return _prefix(self.bucket)


@dataclass(frozen=True)
class DestinationOverride(_Place):
    """A destination as written in defaults or a meeting: ``None`` fields inherit.

    ``bucket`` may carry a sub-folder: ``"my-bucket/sub/folder"``; for the
    ``local`` provider it is a folder on this machine.
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

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """The REST shape (unset fields left out). Secrets and URL credentials are
        masked unless ``reveal`` is true."""
        return _destination_dict(self, reveal)


@dataclass(frozen=True)
class Destination(_Place):
    """Where a recording's file goes: the effective destination a sink receives.

    ``provider`` is the sink's name and ``bucket`` its place (``"my-bucket/sub/folder"``;
    for ``local``, a folder). ``file_format`` is the encoder's name; a sink
    never reads it, and a destination built only to store a file may leave it
    ``""``. Credentials, ``region`` and ``endpoint_url`` are ``None`` when not set.
    """

    provider: str
    bucket: str = ""
    access_key_id: str | None = None
    access_key_secret: Secret | None = None
    file_format: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    #: ``accessKey`` (or ``None``: keys) or ``roleBased`` (assume ``oidc_role_arn``).
    authentication_type: str | None = None
    oidc_role_arn: str | None = None

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """The REST shape. Secrets and URL credentials are masked unless ``reveal``."""
        return _destination_dict(self, reveal)


@dataclass(frozen=True)
class RecordingOverride:
    """A ``recording`` object of the defaults or of a meeting; ``None`` fields inherit."""

    type: str | None = None
    destination: DestinationOverride | None = None
    start_trigger: str | None = None
    max_duration: float | None = None

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """The REST shape; secrets masked unless ``reveal``."""
        return {
            "type": self.type,
            "destination": self.destination.to_dict(reveal=reveal) if self.destination else None,
            "startTrigger": self.start_trigger,
            "maxDuration": self.max_duration,
        }


@dataclass(frozen=True)
class RecordingSettings:
    """The effective settings a recording runs with: every field has a value.

    Made by :func:`recfw.settings.effective` (defaults and override merged, then
    validated against the installed plugins).
    """

    type: str
    destination: Destination
    start_trigger: str
    max_duration: float = DEFAULT_MAX_DURATION

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """The REST shape; secrets masked unless ``reveal``."""
        return {
            "type": self.type,
            "destination": self.destination.to_dict(reveal=reveal),
            "startTrigger": self.start_trigger,
            "maxDuration": self.max_duration,
        }


def as_override(settings: RecordingOverride | RecordingSettings) -> RecordingOverride:
    """``settings`` as an override (effective settings become one that sets every field)."""
    if isinstance(settings, RecordingOverride):
        return settings
    return RecordingOverride(
        type=settings.type,
        destination=destination_override(settings.destination),
        start_trigger=settings.start_trigger,
        max_duration=settings.max_duration,
    )


def destination_override(
    destination: DestinationOverride | Destination | None,
) -> DestinationOverride | None:
    """``destination`` as an override (``""`` fields of an effective one become ``None``)."""
    if destination is None or isinstance(destination, DestinationOverride):
        return destination
    return DestinationOverride(
        **{f.name: getattr(destination, f.name) or None for f in fields(DestinationOverride)}
    )


#: The embedded default: a local folder, no account needed.
EMBEDDED_DEFAULT = RecordingOverride(
    type="local",
    destination=DestinationOverride(
        provider="local", bucket=DEFAULT_LOCAL_FOLDER, file_format="mkv"
    ),
    start_trigger="automatic",
    max_duration=DEFAULT_MAX_DURATION,
)

__all__ = [
    "RECORDING_TYPES",
    "AUTHENTICATION_TYPES",
    "DESTINATION_FIELDS",
    "RECORDING_FIELDS",
    "Destination",
    "DestinationOverride",
    "RecordingOverride",
    "RecordingSettings",
    "EMBEDDED_DEFAULT",
    "as_override",
    "destination_override",
]
