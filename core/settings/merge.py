"""Laying a meeting's override over the defaults; credentials from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace

from ..recording import (
    DestinationOverride,
    RecordingOverride,
    RecordingSettings,
    as_override,
    destination_override,
)
from ..secrets import Secret


def _merge_destination(
    default: DestinationOverride | None, override: DestinationOverride | None
) -> DestinationOverride:
    if default is None:
        return override or DestinationOverride()
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
        for f in fields(DestinationOverride)
    }
    if override.endpoint_url not in (None, default.endpoint_url):
        # Another endpoint: the organization's credentials are not sent there.
        merged["access_key_id"] = override.access_key_id
        merged["access_key_secret"] = override.access_key_secret
    return DestinationOverride(**merged)


def merge(
    default: RecordingOverride | RecordingSettings,
    override: RecordingOverride | RecordingSettings | None,
) -> RecordingOverride:
    """``override``'s set fields over ``default``: still an override, not yet checked.

    ``None`` inherits. A destination with another ``provider`` replaces the
    default one entirely (only ``fileFormat`` is inherited); one with another
    ``endpointUrl`` does not inherit the default credentials.
    :func:`recfw.settings.effective` validates the result and makes it
    :class:`~recfw.recording.RecordingSettings`.
    """
    base = as_override(default)
    if override is None:
        return base
    over = as_override(override)
    return RecordingOverride(
        type=over.type if over.type is not None else base.type,
        destination=_merge_destination(base.destination, destination_override(over.destination)),
        start_trigger=over.start_trigger if over.start_trigger is not None else base.start_trigger,
        max_duration=over.max_duration if over.max_duration is not None else base.max_duration,
    )


def with_env_credentials(
    settings: RecordingOverride, environ: Mapping[str, str]
) -> RecordingOverride:
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


__all__ = ["merge", "with_env_credentials"]
