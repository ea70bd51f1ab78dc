"""Defaults that more than one part of recfw relies on, each defined once."""

from __future__ import annotations

#: The longest a recording may run when the settings do not say (24 hours), in seconds.
DEFAULT_MAX_DURATION = 24 * 3600.0

#: The folder of the embedded default destination (the ``local`` sink).
DEFAULT_LOCAL_FOLDER = "recordings"

__all__ = ["DEFAULT_MAX_DURATION", "DEFAULT_LOCAL_FOLDER"]
