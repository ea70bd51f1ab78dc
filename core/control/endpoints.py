"""Webhook endpoints in the database (the config file's ``[[webhooks]]`` are synced in)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..secrets import Secret
from .models import WebhookEndpoint, new_id, utcnow


class EndpointStore:
    """Webhook endpoint rows. Every method works in the caller's session."""

    def add(
        self,
        session: Session,
        url: str,
        secret: Secret | str,
        events: Sequence[str] | None = None,
        *,
        source: str = "api",
    ) -> WebhookEndpoint:
        """A new endpoint (``events`` ``None``: every event type)."""
        row = WebhookEndpoint(
            id=new_id(),
            url=url,
            secret=Secret(secret),
            events=list(events) if events is not None else None,
            source=source,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return row

    def list(self, session: Session, *, disabled: bool = False) -> builtins.list[WebhookEndpoint]:
        """Endpoints, oldest first (disabled ones too if ``disabled``)."""
        stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        if not disabled:
            stmt = stmt.where(WebhookEndpoint.disabled_at.is_(None))
        return list(session.scalars(stmt))

    def get(self, session: Session, endpoint_id: str) -> WebhookEndpoint | None:
        return session.get(WebhookEndpoint, endpoint_id)

    def disable(
        self, session: Session, endpoint_id: str, now: datetime | None = None
    ) -> WebhookEndpoint | None:
        """Stop sending to an endpoint (its pending deliveries stay, for the record)."""
        row = session.get(WebhookEndpoint, endpoint_id)
        if row is not None and row.disabled_at is None:
            row.disabled_at = now or utcnow()
        return row

    def sync_config(
        self, session: Session, configured: Iterable[object]
    ) -> builtins.list[WebhookEndpoint]:
        """Make the ``source="config"`` endpoints match the config file's ``[[webhooks]]``.

        ``configured`` holds :class:`recfw.config.WebhookEndpoint` values (``url``,
        ``secret``, ``events``). An entry keeps its row (and its pending
        deliveries) while its URL stays; a removed entry is disabled.
        """
        rows = {
            row.url: row
            for row in session.scalars(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.source == "config", WebhookEndpoint.disabled_at.is_(None)
                )
            )
        }
        kept = []
        for item in configured:
            url: str = item.url  # type: ignore[attr-defined]
            secret: Secret = item.secret  # type: ignore[attr-defined]
            events = item.events  # type: ignore[attr-defined]
            events = list(events) if events is not None else None
            row = rows.pop(url, None)
            if row is None:
                row = self.add(session, url, secret, events, source="config")
            else:
                if row.secret != secret:
                    row.secret = secret
                if row.events != events:
                    row.events = events
            kept.append(row)
        now = utcnow()
        for row in rows.values():
            row.disabled_at = now
        session.flush()
        return kept


__all__ = ["EndpointStore"]
