"""Times as recfw shows them: ISO 8601 in UTC.

One home for the format of every timestamp in webhooks, events and the REST
API (``2026-11-23T19:40:05.123Z``). File names use whole seconds instead
(:func:`recfw.naming.format_start_time`).
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime) -> str:
    """``2026-11-23T19:40:05.123Z``: ISO 8601, UTC, milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["iso_utc"]
