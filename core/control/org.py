"""The organization's recording defaults (one row), seeded from the config file once."""

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

    def seed(
        self, session: Session, recording: Mapping[str, Any], source: str | None = None
    ) -> bool:
        """Store ``recording`` if no defaults are stored yet; ``True`` if it was stored.

        Afterwards the database wins: a changed config file does not overwrite
        what the API or dashboard set (use :meth:`replace` for that).
        """
        row = self.row(session)
        if row.recording is not None:
            return False
        row.set_recording(dict(recording))
        row.seeded_from = source
        row.updated_at = utcnow()
        return True

    def replace(self, session: Session, recording: Mapping[str, Any]) -> None:
        """Set new defaults (the dashboard or API's "Configure → Recording")."""
        row = self.row(session)
        row.set_recording(dict(recording))
        row.updated_at = utcnow()


__all__ = ["OrgSettingsStore"]
