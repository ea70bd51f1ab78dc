"""API keys: made once, shown once, stored as a SHA-256 hash.

A key looks like ``rfk_<43 url-safe characters>`` (256 random bits), so a
plain SHA-256 is enough (no password hashing needed: nothing to brute-force).
``prefix`` (its first 12 characters) identifies a key in lists and logs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ApiKey, new_id, utcnow

KEY_MARK = "rfk_"
PREFIX_CHARS = 12
#: ``last_used_at`` is written at most this often per key (not on every request).
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``key`` is the only time the whole key is known."""

    row: ApiKey
    key: str


def hash_key(key: str) -> str:
    """The stored form of ``key``."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_CHARS]


class ApiKeyStore:
    """API key rows. Every method works in the caller's session (its transaction)."""

    def create(self, session: Session, name: str, *, admin: bool = False) -> NewKey:
        """Make a key; return it whole (once) with its row."""
        key = KEY_MARK + secrets.token_urlsafe(32)
        row = ApiKey(
            id=new_id(),
            name=name,
            prefix=key_prefix(key),
            hash=hash_key(key),
            admin=admin,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return NewKey(row, key)

    def list(self, session: Session, *, revoked: bool = True) -> list[ApiKey]:
        """Every key, oldest first (without revoked ones unless ``revoked``)."""
        stmt = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        if not revoked:
            stmt = stmt.where(ApiKey.revoked_at.is_(None))
        return list(session.scalars(stmt))

    def find(self, session: Session, ref: str) -> ApiKey | None:
        """The key whose id or prefix is ``ref`` (``None`` if none, or several match)."""
        row = session.get(ApiKey, ref)
        if row is not None:
            return row
        rows = list(session.scalars(select(ApiKey).where(ApiKey.prefix == ref)))
        return rows[0] if len(rows) == 1 else None

    def revoke(self, session: Session, ref: str, now: datetime | None = None) -> ApiKey | None:
        """Revoke the key ``ref`` (id or prefix); ``None`` if there is no such key."""
        row = self.find(session, ref)
        if row is not None and row.revoked_at is None:
            row.revoked_at = now or utcnow()
        return row

    def verify(
        self, session: Session, key: str, now: datetime | None = None, *, touch: bool = True
    ) -> ApiKey | None:
        """The live key row matching ``key`` (hashes compared in constant time), else ``None``.

        With ``touch``, records ``last_used_at`` (at most once a minute per key);
        without, call :meth:`touch` in a write transaction when :meth:`needs_touch`.
        """
        if not key.startswith(KEY_MARK):
            return None
        wanted = hash_key(key)
        match = None
        for row in session.scalars(select(ApiKey).where(ApiKey.prefix == key_prefix(key))):
            if hmac.compare_digest(row.hash.encode("ascii"), wanted.encode("ascii")):
                match = row
        if match is None or match.revoked_at is not None:
            return None
        if touch and self.needs_touch(match, now):
            match.last_used_at = now or utcnow()
        return match

    @staticmethod
    def needs_touch(row: ApiKey, now: datetime | None = None) -> bool:
        """Whether ``row.last_used_at`` is older than :data:`TOUCH_EVERY`."""
        now = now or utcnow()
        return row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY

    def touch(self, session: Session, key_id: str, now: datetime | None = None) -> None:
        """Record that the key ``key_id`` was used ``now``."""
        row = session.get(ApiKey, key_id)
        if row is not None:
            row.last_used_at = now or utcnow()


__all__ = ["ApiKeyStore", "KEY_MARK", "NewKey", "hash_key"]
