"""Webhook delivery from the outbox: at least once, in order per endpoint, for hours.

:class:`WebhookWorker` loops over :meth:`recfw.control.outbox.Outbox.claim_due`
(the oldest pending delivery of each endpoint whose time has come), POSTs each
event's JSON body signed twice (:func:`recfw.events.signed_headers`: Standard
Webhooks and ``Whereby-Signature``), and records the outcome:

* a 2xx: delivered;
* a 3xx: a failure (redirects are never followed: a receiver that moved must be
  reconfigured), retried;
* 408, 429, a 5xx, a connection error or a timeout: retried after an
  exponential backoff with jitter, or after ``Retry-After`` when the receiver
  sends one;
* any other 4xx, or a URL :mod:`recfw.netguard` refuses: failed for good,
  with the status and reason recorded (``recfw webhooks retry`` replays it);
* an event older than ``max_age`` (24 h by default) that still is not
  delivered: failed for good.

Deliveries to one endpoint never overtake each other: a later one waits while
an earlier one is pending. Nothing is kept in memory: a delivery survives
restarts and exits in the database, and one claimed by a worker that died is
sent again once its lease runs out (receivers dedupe by ``webhook-id``, the
event's id).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp

from .. import netguard
from ..errors import describe
from ..events import signed_headers
from ..secrets import safe_url
from .models import utcnow
from .outbox import ClaimedDelivery, Outbox

if TYPE_CHECKING:
    from .db import Database

log = logging.getLogger(__name__)

USER_AGENT = "recfw-webhooks/2"
#: Statuses retried even though they are 4xx.
RETRIED_4XX = (408, 429)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard and how long deliveries are tried (``[webhooks]``-wide defaults)."""

    #: First retry after about this long; doubles with each attempt.
    backoff: timedelta = timedelta(seconds=5)
    #: Longest wait between two attempts.
    backoff_max: timedelta = timedelta(hours=1)
    #: An event not delivered this long after it happened is given up (failed).
    max_age: timedelta = timedelta(hours=24)
    #: Longest ``Retry-After`` honoured (a longer one is cut to this).
    retry_after_max: timedelta = timedelta(hours=6)
    #: Seconds one request may take, connecting included.
    timeout: float = 10.0
    #: A claimed delivery whose worker died is sent again after this long.
    lease: timedelta = timedelta(seconds=60)

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
        """The wait after ``attempts`` failed attempts: exponential, capped, jittered
        (between half and all of it)."""
        base = self.backoff.total_seconds() * 2 ** max(attempts - 1, 0)
        capped = min(base, self.backoff_max.total_seconds())
        return timedelta(seconds=capped * (0.5 + 0.5 * rng()))


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    status: int | None
    error: str | None
    #: ``"delivered"``, ``"retry"`` or ``"failed"`` (for good).
    verdict: str
    retry_after: timedelta | None = None


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as a wait: seconds, or an HTTP date (``None`` if absent or bad)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(when - now, timedelta(0))
    return None


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed) for an envelope."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookWorker:
    """Sends due deliveries from the outbox. ``clock`` (UTC ``datetime``) and ``rng``
    are injectable so tests can run hours of backoff on a virtual clock."""

    def __init__(
        self,
        db: Database,
        policy: DeliveryPolicy | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: Callable[[], float] = random.random,
        batch: int = 20,
    ):
        self.db = db
        self.outbox = Outbox(db)
        self.policy = policy or DeliveryPolicy()
        self.clock = clock
        self.rng = rng
        self.batch = batch
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: aiohttp.ClientSession | None = None

    # --- one round ------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Claim every due delivery (one per endpoint), send them side by side, record
        the outcomes. Returns how many were attempted."""
        now = self.clock()
        claimed = await asyncio.to_thread(self.outbox.claim_due, now, self.batch, self.policy.lease)
        if not claimed:
            return 0
        await asyncio.gather(*(self._one(d) for d in claimed))
        return len(claimed)

    async def _one(self, delivery: ClaimedDelivery) -> None:
        created = _created_at(delivery.payload)
        try:
            outcome = await self.send(delivery)
        except Exception as exc:  # noqa: BLE001 - one bad delivery never stops the worker
            log.exception("webhook %s to %s: unexpected error", delivery.event_id, delivery.url)
            outcome = Outcome(None, describe(exc, 200), "retry")
        now = self.clock()
        url = safe_url(delivery.url)
        if outcome.verdict == "delivered":
            await asyncio.to_thread(self.outbox.delivered, delivery.id, outcome.status or 0, now)
            log.debug("webhook %s %s delivered to %s", delivery.event_type, delivery.event_id, url)
            return
        if outcome.verdict == "retry" and created is not None:
            if now - created >= self.policy.max_age:
                outcome = Outcome(
                    outcome.status,
                    f"gave up after {delivery.attempts} attempts over "
                    f"{_hours(self.policy.max_age)}: {outcome.error}",
                    "failed",
                )
        if outcome.verdict == "failed":
            log.error(
                "webhook %s (%s) to %s failed for good: %s",
                delivery.event_type,
                delivery.event_id,
                url,
                outcome.error,
            )
            await asyncio.to_thread(
                self.outbox.failed, delivery.id, status_code=outcome.status, error=outcome.error
            )
            return
        wait = self.policy.delay(delivery.attempts, self.rng)
        if outcome.retry_after is not None:
            wait = min(outcome.retry_after, self.policy.retry_after_max)
        log.info(
            "webhook %s to %s failed (%s), attempt %d; next in %.0fs",
            delivery.event_type,
            url,
            outcome.error,
            delivery.attempts,
            wait.total_seconds(),
        )
        await asyncio.to_thread(
            self.outbox.retry_at,
            delivery.id,
            now + wait,
            status_code=outcome.status,
            error=outcome.error,
        )

    # --- one request ----------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            connector = aiohttp.TCPConnector(**netguard.aiohttp_connector_args(), limit=50)
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout),
                headers={"User-Agent": USER_AGENT},
            )
        return self._http

    async def send(self, delivery: ClaimedDelivery) -> Outcome:
        """POST one delivery (never following redirects) and judge the answer."""
        body = body_of(delivery.payload)
        headers = {"Content-Type": "application/json"}
        headers.update(
            signed_headers(delivery.event_id, body, delivery.secret, int(self.clock().timestamp()))
        )
        try:
            async with self._session().post(
                delivery.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(65536)
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any network failure is a failed attempt
            refusal = netguard.find_refusal(exc)
            if refusal is not None:
                return Outcome(None, f"refused: {refusal}", "failed")
            if isinstance(exc, TimeoutError):
                return Outcome(None, f"no answer within {self.policy.timeout:g}s", "retry")
            return Outcome(None, describe(exc, 200), "retry")
        if 200 <= status < 300:
            return Outcome(status, None, "delivered")
        if 300 <= status < 400:
            return Outcome(status, f"HTTP {status}: redirects are not followed", "retry")
        if status in RETRIED_4XX or status >= 500:
            return Outcome(status, f"HTTP {status}", "retry", retry_after)
        return Outcome(status, f"HTTP {status}: refused by the receiver", "failed")

    # --- running --------------------------------------------------------------------

    def wake(self) -> None:
        """Something was added to the outbox: look now (callable from any thread)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    async def run(self, stop: asyncio.Event, poll: float = 1.0) -> None:
        """Deliver until ``stop`` is set; pending deliveries then wait in the database."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while not stop.is_set():
                try:
                    sent = await self.deliver_due()
                except Exception:  # noqa: BLE001 - a database hiccup: try again shortly
                    log.exception("webhook delivery round failed")
                    sent = 0
                if sent:
                    continue
                self._wake.clear()
                waiters = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._wake.wait()),
                ]
                try:
                    await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
        finally:
            await self.close()

    async def flush(self, timeout: float) -> int:
        """Best effort before an exit: deliver what is due for up to ``timeout`` seconds.
        Returns how many deliveries are still pending (they wait in the database)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with contextlib.suppress(TimeoutError):
            while loop.time() < deadline:
                sent = await asyncio.wait_for(self.deliver_due(), max(deadline - loop.time(), 0.01))
                if not sent:
                    break
        await self.close()
        with self.db.session(readonly=True) as s:
            return Outbox.pending_count(s)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def _created_at(payload: dict[str, Any]) -> datetime | None:
    text = payload.get("createdAt")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} h"


__all__ = [
    "DeliveryPolicy",
    "Outcome",
    "WebhookWorker",
    "body_of",
    "parse_retry_after",
]
