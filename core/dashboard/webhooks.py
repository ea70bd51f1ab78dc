"""Webhooks: endpoints (add — the secret is shown once —, disable), the delivery log with
attempts and last status, and replay (the same requeue as ``recfw webhooks retry``:
:meth:`recfw.control.Outbox.requeue`; the running worker sends it within a second)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from .. import netguard
from ..control import EndpointStore, Outbox
from ..control.models import OutboxEvent, WebhookEndpoint
from ..events import EVENT_TYPES, new_secret
from ..secrets import safe_url
from ..times import iso_utc

if TYPE_CHECKING:
    from .app import Frame
    from .sessions import Login

DELIVERIES_SHOWN = 100


class WebhooksPage:
    """``/dashboard/webhooks``."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self.server = frame.server

    def _state(self, status: str) -> dict[str, Any]:
        with self.server.control_db().session(readonly=True) as s:
            endpoints = [
                {
                    "id": e.id,
                    "url": safe_url(e.url),
                    "events": ", ".join(e.events) if e.events else "every event",
                    "source": e.source,
                    "created": iso_utc(e.created_at),
                }
                for e in EndpointStore().list(s)
            ]
            rows = Outbox.deliveries(s, status=status or None, limit=DELIVERIES_SHOWN)
            ids = {d.event_id for d in rows}
            events = {
                e.id: e for e in s.scalars(select(OutboxEvent).where(OutboxEvent.id.in_(ids)))
            }
            deliveries = []
            for d in rows:
                event = events.get(d.event_id)
                endpoint = s.get(WebhookEndpoint, d.endpoint_id)
                deliveries.append(
                    {
                        "id": d.id,
                        "type": event.type if event else "?",
                        "event_id": d.event_id,
                        "endpoint": safe_url(endpoint.url) if endpoint else d.endpoint_id,
                        "status": d.status,
                        "attempts": d.attempts,
                        "code": d.last_status_code,
                        "error": d.last_error or "",
                        "when": iso_utc(d.delivered_at or d.next_attempt_at),
                        "replay": d.status in ("failed", "pending"),
                    }
                )
        return {"endpoints": endpoints, "deliveries": deliveries}

    async def _page(
        self, request: web.Request, login: Login, *, status: int = 200, **extra: Any
    ) -> web.Response:
        wanted = request.query.get("status", "")
        if wanted not in ("pending", "delivered", "failed"):
            wanted = ""
        context = await asyncio.to_thread(self._state, wanted)
        context.update(
            event_types=EVENT_TYPES,
            status=wanted,
            errors=[],
            values={},
            created=None,
            notice=request.query.get("notice", ""),
            failed=any(d["status"] == "failed" for d in context["deliveries"]),
        )
        context.update(extra)
        return self.frame.render(request, "webhooks.html", login, http_status=status, **context)

    async def get(self, request: web.Request, login: Login) -> web.StreamResponse:
        return await self._page(request, login)

    async def add(self, request: web.Request, login: Login) -> web.StreamResponse:
        form = await request.post()
        url = str(form.get("url", "")).strip()
        events = [e for e in form.getall("events", []) if e in EVENT_TYPES]
        problem = ""
        if not url.startswith(("http://", "https://")):
            problem = "URL: must be an http:// or https:// URL"
        else:
            found = await asyncio.to_thread(netguard.url_errors, url, "URL")
            if found:
                problem = f"URL: {found[0].message}"
        if problem:
            return await self._page(
                request, login, status=400, errors=[problem], values={"url": url}
            )
        secret = new_secret()
        await asyncio.to_thread(self._add, url, secret, events)
        return await self._page(request, login, created={"url": safe_url(url), "secret": secret})

    def _add(self, url: str, secret: str, events: list[str]) -> None:
        with self.server.control_db().session() as s:
            EndpointStore().add(s, url, secret, events or None, source="dashboard")

    async def disable(self, request: web.Request, login: Login) -> web.StreamResponse:
        endpoint_id = request.match_info["id"]

        def run() -> bool:
            with self.server.control_db().session() as s:
                return EndpointStore().disable(s, endpoint_id) is not None

        done = await asyncio.to_thread(run)
        return self._back("Endpoint disabled." if done else "No such endpoint.")

    async def replay(self, request: web.Request, login: Login) -> web.StreamResponse:
        form = await request.post()
        ids: list[int] = []
        if form.get("all_failed"):

            def failed() -> list[int]:
                with self.server.control_db().session(readonly=True) as s:
                    return [d.id for d in Outbox.deliveries(s, status="failed", limit=100_000)]

            ids = await asyncio.to_thread(failed)
        else:
            try:
                ids = [int(str(form.get("delivery", "")))]
            except ValueError:
                return self._back("Choose a delivery to replay.")

        def run() -> int:
            with self.server.control_db().session() as s:
                return sum(1 for i in ids if Outbox.requeue(s, i, self.server.clock()))

        done = await asyncio.to_thread(run)
        control = getattr(self.server, "control", None)
        if control is not None and hasattr(control, "_notify"):
            control._notify()  # wake the webhook worker now
        return self._back(f"{done} deliveries queued again: they are sent within seconds.")

    def _back(self, notice: str) -> web.StreamResponse:
        raise web.HTTPSeeOther("/dashboard/webhooks?" + urlencode({"notice": notice}))


__all__ = ["WebhooksPage"]
