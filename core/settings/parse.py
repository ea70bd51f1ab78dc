"""Reading a ``recording`` object (REST shape) into a :class:`~recfw.recording.RecordingOverride`.

Only shape and types are checked here, each problem naming its field
(``recording.destination.bucket: must be a string, not int``); values that
depend on installed plugins are checked by :mod:`recfw.settings.validate`.

The checks are written by hand rather than with a validation library: they
are few, their messages are part of the API (tests and users read them
verbatim), and a library's own messages (pydantic's ``Input should be a valid
string``) would each need translating back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import FieldError, SettingsError
from ..recording import (
    DESTINATION_FIELDS,
    RECORDING_FIELDS,
    DestinationOverride,
    RecordingOverride,
)
from ..secrets import Secret


def _string(value: Any, name: str, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, f"must be a string, not {type(value).__name__}"))
        return None
    return value


def _parse_destination(
    data: Any, prefix: str, errors: list[FieldError]
) -> DestinationOverride | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        errors.append(FieldError(prefix, "must be an object or null"))
        return None
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}"
        attr = DESTINATION_FIELDS.get(key)
        if attr is None:
            known = ", ".join(DESTINATION_FIELDS)
            errors.append(FieldError(name, f"unknown field (known: {known})"))
            continue
        if attr == "access_key_secret":
            if value is not None and not isinstance(value, str | Secret):
                errors.append(FieldError(name, "must be a string"))
            elif value is not None:
                values[attr] = Secret(value)
            continue
        values[attr] = _string(value, name, errors)
    return DestinationOverride(**values)


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


def parse_recording(data: Any, prefix: str = "recording") -> RecordingOverride:
    """Read a ``recording`` object (REST shape). Raise ``SettingsError`` on bad shape.

    ``None`` (and every missing or ``null`` field) is kept as ``None``: inherit.
    """
    errors: list[FieldError] = []
    if data is None:
        return RecordingOverride()
    if not isinstance(data, Mapping):
        raise SettingsError([FieldError(prefix, "must be an object or null")])
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}"
        attr = RECORDING_FIELDS.get(key)
        if attr is None:
            known = ", ".join(RECORDING_FIELDS)
            errors.append(FieldError(name, f"unknown field (known: {known})"))
        elif attr == "destination":
            values[attr] = _parse_destination(value, name, errors)
        elif attr == "max_duration":
            values[attr] = _parse_duration(value, name, errors)
        else:
            values[attr] = _string(value, name, errors)
    if errors:
        raise SettingsError(errors)
    return RecordingOverride(**values)


__all__ = ["parse_recording"]
