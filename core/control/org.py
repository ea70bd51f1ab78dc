"""The organization's recording defaults (one row), seeded from the config file.

The config file's ``[recording]`` applies until the defaults are changed
through the API or dashboard (:meth:`OrgSettingsStore.replace`); from then on
the database wins and the config file's ``[recording]`` only seeds a new,
empty database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from .models import OrgSettings, utcnow


class OrgSettingsStore:
    """The ``org_settings`` row. Every method works in the caller's session."""

    def row(self, session: Session) -> OrgSettings:
        """The row (made empty if missing)."""
        row = session.get(OrgSettings, 1)
        if row is None:
            row = OrgSettings(id=1, secrets={})
            session.add(row)
            session.flush()
        return row

    def recording(self, session: Session) -> dict[str, Any] | None:
        """The defaults' ``recording`` object with secrets (``None``: never set)."""
        return self.row(session).recording_revealed()

    def seed(self, session: Session, recording: Mapping[str, Any], source: str) -> bool:
        """Store the config file's ``recording`` (from ``source``) unless the defaults were
        edited in the database; ``True`` if the stored defaults changed.
        """
        row = self.row(session)
        if self.edited(row):
            return False
        if row.recording_revealed() == dict(recording) and row.seeded_from == source:
            return False
        row.set_recording(dict(recording))
        row.seeded_from = source
        row.updated_at = utcnow()
        return True

    @staticmethod
    def edited(row: OrgSettings) -> bool:
        """Whether the defaults were set through the API/dashboard (then they win)."""
        return row.recording is not None and row.seeded_from is None

    def replace(self, session: Session, recording: Mapping[str, Any]) -> None:
        """Set new defaults (the dashboard or API's "Configure → Recording"): from now on
        the database wins over the config file's ``[recording]``."""
        row = self.row(session)
        row.set_recording(dict(recording))
        row.seeded_from = None
        row.updated_at = utcnow()


__all__ = ["OrgSettingsStore"]
