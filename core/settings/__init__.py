"""Recording settings: read, merged, validated, made effective.

The data lives in :mod:`recfw.recording` (an override: every field optional,
``None`` = inherit; effective settings: every field set). This package does
one thing per module:

- :mod:`recfw.settings.parse`: :func:`parse_recording` reads a ``recording``
  object (REST shape) into an override, checking shape and types only;
- :mod:`recfw.settings.merge`: :func:`merge` lays a meeting's override over the
  defaults, :func:`with_env_credentials` fills credentials from the environment;
- :mod:`recfw.settings.validate`: :func:`validate` checks merged settings
  against the installed plugins (a :class:`~recfw.registry.PluginRegistry`),
  :func:`validate_encoder_options` the ``[encoder]`` options;

and :func:`effective` does all of it for one meeting. Everything is also
importable from ``recfw.settings`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..defaults import DEFAULT_LOCAL_FOLDER, DEFAULT_MAX_DURATION
from ..errors import SettingsError
from ..recording import (
    EMBEDDED_DEFAULT,
    Destination,
    DestinationOverride,
    RecordingOverride,
    RecordingSettings,
)
from ..secrets import strip_url_credentials
from .merge import merge, with_env_credentials
from .parse import parse_recording
from .validate import validate, validate_encoder_options

if TYPE_CHECKING:
    from ..registry import PluginRegistry


def resolve(settings: RecordingOverride) -> RecordingSettings:
    """Merged settings that :func:`validate` accepted, as effective settings.

    Only for settings without problems: what validation would have reported
    missing (a bucket of a ``none`` recording, ...) becomes ``""``.
    """
    dest = settings.destination or DestinationOverride()
    return RecordingSettings(
        type=settings.type or "none",
        destination=Destination(
            provider=dest.provider or "",
            bucket=dest.bucket or "",
            access_key_id=dest.access_key_id,
            access_key_secret=dest.access_key_secret,
            file_format=dest.file_format or "",
            region=dest.region,
            endpoint_url=dest.endpoint_url,
        ),
        start_trigger=settings.start_trigger or "",
        max_duration=settings.max_duration or DEFAULT_MAX_DURATION,
    )


def effective(
    default: RecordingOverride,
    override: RecordingOverride | None,
    plugins: PluginRegistry,
    environ: Mapping[str, str] | None = None,
) -> RecordingSettings:
    """Fill the defaults' credentials from the environment, merge, validate; raise on any problem.

    The environment's credentials belong to the organization defaults: like the
    credentials in the defaults, they never go to a meeting's other provider or
    other endpoint.
    """
    default = with_env_credentials(default, os.environ if environ is None else environ)
    settings = merge(default, override)
    errors = validate(settings, plugins)
    if errors:
        raise SettingsError(errors)
    return resolve(settings)


__all__ = [
    "DEFAULT_LOCAL_FOLDER",
    "DEFAULT_MAX_DURATION",
    "Destination",
    "DestinationOverride",
    "RecordingOverride",
    "RecordingSettings",
    "EMBEDDED_DEFAULT",
    "parse_recording",
    "merge",
    "validate",
    "effective",
    "resolve",
    "with_env_credentials",
    "strip_url_credentials",
    "validate_encoder_options",
]
