"""Dashboard logins: server-side sessions, CSRF tokens and a login rate limit.

A login with an admin API key (``recfw keys create --admin``) makes a row in
``dashboard_sessions`` holding the SHA-256 of a random token; the browser holds
the token in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS). Every
request looks the row up again, so logging out, revoking the key or taking its
admin right away ends the session at once; a cookie whose row is gone or
expired is refused. Each session has its own CSRF token, which every form
posts back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from ..control.auth import TokenBucket
from ..control.keys import ApiKeyStore
from ..control.models import ApiKey, DashboardSession, utcnow

#: How long a login lasts.
SESSION_TTL = timedelta(hours=8)
#: Login attempts per minute from one address (bursts up to this many).
LOGIN_RATE = 10


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens (``None`` or empty never matches)."""
    if not a or not b:
        return False
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


@dataclass(frozen=True)
class Login:
    """A live dashboard session: who (the admin key) and the session's CSRF token."""

    session_id: str
    key_id: str
    key_name: str
    csrf_token: str


class LoginRefused(Exception):
    """Why a login was refused (a message for the login page)."""


class SessionStore:
    """Dashboard sessions in the control plane's database (``db()`` gives it)."""

    def __init__(
        self,
        db: Callable[[], object],
        *,
        ttl: timedelta = SESSION_TTL,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._db = db
        self.ttl = ttl
        self.clock = clock

    def login(self, key: str) -> tuple[str, Login]:
        """Check an admin API key; return ``(cookie token, login)``; :class:`LoginRefused`."""
        db = self._db()
        now = self.clock()
        with db.session() as s:  # type: ignore[attr-defined]
            row = ApiKeyStore().verify(s, key.strip(), now)
            if row is None:
                raise LoginRefused("that API key is not valid (wrong, or revoked)")
            if not row.admin:
                raise LoginRefused(
                    "that API key has no admin rights: log in with a key made with "
                    "`recfw keys create --admin`"
                )
            s.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))
            token = secrets.token_urlsafe(32)
            login = Login(token_hash(token), row.id, row.name, secrets.token_urlsafe(32))
            s.add(
                DashboardSession(
                    id=login.session_id,
                    key_id=row.id,
                    csrf_token=login.csrf_token,
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
        return token, login

    def check(self, token: str | None) -> Login | None:
        """The live session of a cookie token, else ``None`` (unknown, expired, logged out,
        or its key revoked or no longer admin)."""
        if not token:
            return None
        db = self._db()
        with db.session(readonly=True) as s:  # type: ignore[attr-defined]
            found = s.execute(
                select(DashboardSession, ApiKey)
                .join(ApiKey, ApiKey.id == DashboardSession.key_id)
                .where(DashboardSession.id == token_hash(token))
            ).first()
            if found is None:
                return None
            row, key = found
            if row.expires_at <= self.clock() or key.revoked_at is not None or not key.admin:
                return None
            return Login(row.id, key.id, key.name, row.csrf_token)

    def logout(self, token: str | None) -> None:
        """End the session of a cookie token (nothing if there is none)."""
        if not token:
            return
        with self._db().session() as s:  # type: ignore[attr-defined]
            s.execute(delete(DashboardSession).where(DashboardSession.id == token_hash(token)))


class LoginLimiter:
    """At most ``rate`` login attempts a minute per client address."""

    def __init__(self, rate: int = LOGIN_RATE, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, address: str) -> float:
        """``0.0`` if an attempt is allowed now, else the seconds to wait."""
        if len(self._buckets) > 10_000:  # forget idle addresses rather than grow forever
            self._buckets.clear()
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = self._buckets[address] = TokenBucket(self.rate, self.clock)
        return bucket.take()


__all__ = ["Login", "LoginLimiter", "LoginRefused", "SESSION_TTL", "SessionStore", "same"]
