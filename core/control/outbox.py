"""The webhook outbox: events written with the state they describe, delivered later.

:meth:`Outbox.add` inserts an event and one ``pending`` delivery per endpoint
that wants it, in the caller's transaction: if that transaction rolls back, no
event exists; if it commits, the event will be delivered (at least once), even
across restarts. A delivery worker then loops over :meth:`Outbox.claim_due`,
sends, and records the outcome with :meth:`Outbox.delivered`,
:meth:`Outbox.retry_at` or :meth:`Outbox.failed`.

Order: deliveries to one endpoint go in event order (``seq``); a delivery is
claimed only when no earlier pending delivery to the same endpoint is left.
On PostgreSQL, :meth:`Outbox.add` takes a transaction-level advisory lock so
events get their ``seq`` in commit order (a later ``seq`` never becomes visible
before an earlier one); SQLite has a single writer anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, text
from sqlalchemy.orm import Session, aliased

from ..secrets import Secret
from .models import OutboxEvent, WebhookDelivery, WebhookEndpoint, utcnow
from .query import for_update_skip_locked

#: The advisory lock that orders outbox writers on PostgreSQL.
PG_OUTBOX_LOCK = 0x7265_6366_7700_0002
#: How long a claimed delivery is left to its worker before another may take it.
DEFAULT_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery taken by a worker: everything needed to send it, outside any session."""

    id: int
    event_id: str
    event_type: str
    seq: int
    endpoint_id: str
    url: str
    secret: Secret
    payload: dict[str, Any]
    attempts: int  # including this one


class Outbox:
    """The outbox of one database. ``add`` joins the caller's transaction; the delivery
    methods each run their own."""

    def __init__(self, db: Any):
        self.db = db

    # --- writing events ---------------------------------------------------------

    @staticmethod
    def add(session: Session, envelope: Mapping[str, Any]) -> OutboxEvent:
        """Insert ``envelope`` (``{id, type, ...}``) and its pending deliveries, in ``session``."""
        event_id, event_type = envelope.get("id"), envelope.get("type")
        if not isinstance(event_id, str) or not isinstance(event_type, str):
            raise ValueError("an event envelope needs a string 'id' and 'type'")
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_OUTBOX_LOCK})
        event = OutboxEvent(id=event_id, type=event_type, payload=dict(envelope))
        session.add(event)
        session.flush()  # assigns seq
        now = utcnow()
        endpoints = session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.disabled_at.is_(None))
        )
        for endpoint in endpoints:
            if endpoint.wants(event_type):
                session.add(
                    WebhookDelivery(
                        event_id=event.id,
                        endpoint_id=endpoint.id,
                        seq=event.seq,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                    )
                )
        session.flush()
        return event

    # --- delivering -------------------------------------------------------------

    def claim_due(
        self, now: datetime | None = None, limit: int = 20, lease: timedelta = DEFAULT_LEASE
    ) -> list[ClaimedDelivery]:
        """Take up to ``limit`` due deliveries, each the oldest pending one of its endpoint.

        A claimed delivery has one more attempt counted and is not due again
        before ``now + lease``: a worker that dies mid-send leaves it to be
        retried then (at-least-once). Committed before this returns.
        """
        now = now or utcnow()
        with self.db.session() as session:
            return self.claim_due_in(session, now, limit, lease)

    @staticmethod
    def claim_due_in(
        session: Session, now: datetime, limit: int = 20, lease: timedelta = DEFAULT_LEASE
    ) -> list[ClaimedDelivery]:
        """:meth:`claim_due` in the caller's session."""
        earlier = aliased(WebhookDelivery)
        blocked = exists().where(
            and_(
                earlier.endpoint_id == WebhookDelivery.endpoint_id,
                earlier.status == "pending",
                earlier.seq < WebhookDelivery.seq,
            )
        )
        stmt = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                ~blocked,
            )
            .order_by(WebhookDelivery.seq, WebhookDelivery.id)
            .limit(limit)
        )
        rows = list(session.scalars(for_update_skip_locked(session, stmt)))
        claimed = []
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + lease
            event = session.get(OutboxEvent, row.seq)
            endpoint = session.get(WebhookEndpoint, row.endpoint_id)
            if event is None or endpoint is None:  # pragma: no cover - FKs forbid it
                continue
            claimed.append(
                ClaimedDelivery(
                    id=row.id,
                    event_id=row.event_id,
                    event_type=event.type,
                    seq=row.seq,
                    endpoint_id=endpoint.id,
                    url=endpoint.url,
                    secret=endpoint.secret,
                    payload=dict(event.payload),
                    attempts=row.attempts,
                )
            )
        session.flush()
        return claimed

    def delivered(self, delivery_id: int, status_code: int, now: datetime | None = None) -> None:
        """The receiver took it (a 2xx)."""
        with self.db.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                return
            row.status = "delivered"
            row.last_status_code = status_code
            row.last_error = None
            row.delivered_at = now or utcnow()

    def retry_at(
        self,
        delivery_id: int,
        when: datetime,
        *,
        status_code: int | None = None,
        error: str | None = None,
    ) -> None:
        """It failed for now: try again at ``when`` (later deliveries to its endpoint wait)."""
        with self.db.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                return
            row.next_attempt_at = when
            row.last_status_code = status_code
            row.last_error = error

    def failed(
        self, delivery_id: int, *, status_code: int | None = None, error: str | None = None
    ) -> None:
        """It failed for good (a 4xx other than 408/429, or out of retries)."""
        with self.db.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                return
            row.status = "failed"
            row.last_status_code = status_code
            row.last_error = error

    @staticmethod
    def requeue(session: Session, delivery_id: int, now: datetime | None = None) -> bool:
        """Make a delivery pending again, due now (``recfw webhooks retry``)."""
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:
            return False
        row.status = "pending"
        row.next_attempt_at = now or utcnow()
        row.delivered_at = None
        return True

    @staticmethod
    def deliveries(
        session: Session, *, status: str | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        """Deliveries, newest first (of ``status`` if given)."""
        stmt = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        return list(session.scalars(stmt))

    @staticmethod
    def pending_count(session: Session) -> int:
        """How many deliveries are still pending."""
        from sqlalchemy import func

        stmt = select(func.count()).where(WebhookDelivery.status == "pending")
        return int(session.scalar(stmt) or 0)


__all__ = ["ClaimedDelivery", "DEFAULT_LEASE", "Outbox"]
