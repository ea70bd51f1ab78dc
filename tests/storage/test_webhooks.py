"""Webhooks from the outbox to a real HTTP receiver on 127.0.0.1, on a virtual clock.

The receiver is an aiohttp server that is down, or answers scripted statuses
(500, 302, 410, 429 with Retry-After, ...). Time is a virtual clock handed to
the worker: hours of backoff take no real time. Each test runs on SQLite and
on PostgreSQL (``control_db``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from aiohttp import web
from recfw import netguard
from recfw.control import EndpointStore, Outbox
from recfw.control.delivery import DeliveryPolicy, WebhookWorker, parse_retry_after
from recfw.control.models import WebhookDelivery
from recfw.events import (
    SIGNATURE_HEADER,
    WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    Event,
    new_secret,
    standard_secret,
    verify,
)
from sqlalchemy import select

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A virtual UTC clock."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


class Receiver:
    """An aiohttp server on 127.0.0.1 that records POSTs and answers scripted responses.

    ``script`` items are a status or ``(status, headers)``; when it runs out, 200.
    It can be stopped (connection refused) and started again on the same port.
    """

    def __init__(self):
        self.script: list = []
        self.requests: list[tuple[str, dict, bytes]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.path, dict(request.headers), body))
        item = self.script.pop(0) if self.script else 200
        status, headers = item if isinstance(item, tuple) else (item, {})
        return web.Response(status=status, headers=headers)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def posts(self, path: str = "/hooks") -> list[tuple[dict, bytes]]:
        return [(h, b) for p, h, b in self.requests if p == path]


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    remove = netguard.allow(f"127.0.0.1:{r.port}")
    yield r
    await r.stop()
    remove()


def add_endpoint(db, url: str, secret: str, events=None) -> str:
    with db.session() as s:
        return EndpointStore().add(s, url, secret, events).id


def add_event(db, kind: str = "room.client.joined", clock: Clock | None = None, **data) -> str:
    event = Event(kind, data or {"n": 1}, created_at=(clock or Clock())())
    with db.session() as s:
        Outbox.add(s, event.to_dict())
    return event.id


def delivery(db, event_id: str) -> WebhookDelivery:
    with db.session(readonly=True) as s:
        return s.scalar(select(WebhookDelivery).where(WebhookDelivery.event_id == event_id))


def worker_for(db, clock: Clock, **policy) -> WebhookWorker:
    # rng 1.0: the jitter at its top, so the waits are exact and checkable.
    return WebhookWorker(db, DeliveryPolicy(**policy), clock=clock, rng=lambda: 1.0)


async def drain(worker: WebhookWorker, rounds: int = 20) -> None:
    for _ in range(rounds):
        if not await worker.deliver_due():
            return


# --- signatures --------------------------------------------------------------------


@pytest.mark.parametrize("secret", [new_secret(), "a plain secret from a config file"])
async def test_both_signatures_verify_with_independent_code(control_db, receiver, secret):
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))
    add_endpoint(control_db, receiver.url(), secret)
    event_id = add_event(control_db, "recording.finished", clock, filename="a.mkv")
    worker = worker_for(control_db, clock)
    await drain(worker)
    await worker.close()
    [(headers, body)] = receiver.posts()
    # Standard Webhooks, checked by the standardwebhooks package.
    wh = standardwebhooks.Webhook(standard_secret(secret))
    payload = wh.verify(body, {k.lower(): v for k, v in headers.items()})
    assert payload["id"] == event_id and headers[WEBHOOK_ID_HEADER] == event_id
    assert payload["type"] == "recording.finished" and payload["apiVersion"] == "1.0"
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_secret()).verify(
            body, {k.lower(): v for k, v in headers.items()}
        )
    # Whereby-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<raw body>"> keyed with the secret.
    assert verify(body, headers[SIGNATURE_HEADER], secret)
    assert not verify(body, headers[SIGNATURE_HEADER], "wrong")
    t = headers[SIGNATURE_HEADER].split(",")[0].removeprefix("t=")
    assert t == headers[WEBHOOK_TIMESTAMP_HEADER]
    assert headers[WEBHOOK_SIGNATURE_HEADER].startswith("v1,")
    assert headers["Content-Type"] == "application/json"
    assert delivery(control_db, event_id).status == "delivered"


# --- order, retries, backoff ---------------------------------------------------------


async def test_in_order_per_endpoint_through_an_outage_with_growing_backoff(control_db, receiver):
    clock = Clock()
    add_endpoint(control_db, receiver.url(), "s")
    ids = [add_event(control_db, "room.client.joined", clock, n=i) for i in range(3)]
    await receiver.stop()  # the receiver is down: connection refused
    worker = worker_for(control_db, clock, backoff=timedelta(seconds=5))
    waits = []
    for _ in range(6):
        assert await worker.deliver_due() == 1  # only the oldest of the endpoint
        row = delivery(control_db, ids[0])
        assert row.status == "pending" and row.last_error
        waits.append((row.next_attempt_at - clock()).total_seconds())
        assert await worker.deliver_due() == 0  # not due before its time
        clock.now = row.next_attempt_at
    assert waits == [5, 10, 20, 40, 80, 160]
    assert delivery(control_db, ids[1]).attempts == 0  # later ones waited their turn
    await receiver.start()  # back on the same port
    await drain(worker)
    await worker.close()
    bodies = [json.loads(b) for _, b in receiver.posts()]
    assert [b["id"] for b in bodies] == ids
    assert [b["data"]["n"] for b in bodies] == [0, 1, 2]
    assert all(delivery(control_db, i).status == "delivered" for i in ids)


async def test_backoff_is_capped_and_jittered():
    policy = DeliveryPolicy(backoff=timedelta(seconds=5), backoff_max=timedelta(hours=1))
    assert policy.delay(30, lambda: 1.0) == timedelta(hours=1)
    assert policy.delay(30, lambda: 0.0) == timedelta(minutes=30)
    assert policy.delay(1, lambda: 0.0) == timedelta(seconds=2.5)


async def test_500_is_retried_and_then_delivered(control_db, receiver):
    clock = Clock()
    add_endpoint(control_db, receiver.url(), "s")
    event_id = add_event(control_db, clock=clock)
    receiver.script = [500, 503]
    worker = worker_for(control_db, clock)
    for _ in range(3):
        await worker.deliver_due()
        clock.advance(hours=1)
    await worker.close()
    row = delivery(control_db, event_id)
    assert row.status == "delivered" and row.attempts == 3 and row.last_status_code == 200
    # every attempt carried the same webhook-id (receivers dedupe by it)
    assert {h[WEBHOOK_ID_HEADER] for h, _ in receiver.posts()} == {event_id}


async def test_a_redirect_is_never_followed_and_counts_as_a_failure(control_db, receiver):
    clock = Clock()
    add_endpoint(control_db, receiver.url(), "s")
    event_id = add_event(control_db, clock=clock)
    receiver.script = [(302, {"Location": receiver.url("/elsewhere")})]
    worker = worker_for(control_db, clock)
    await worker.deliver_due()
    row = delivery(control_db, event_id)
    assert row.status == "pending" and row.last_status_code == 302
    assert "redirect" in row.last_error
    assert receiver.posts("/elsewhere") == []  # not followed, no bodiless GET either
    assert [p for p, _, _ in receiver.requests] == ["/hooks"]
    clock.advance(hours=1)
    await worker.deliver_due()
    await worker.close()
    assert delivery(control_db, event_id).status == "delivered"


async def test_a_4xx_is_a_recorded_permanent_failure_and_the_next_event_goes_on(
    control_db, receiver
):
    clock = Clock()
    add_endpoint(control_db, receiver.url(), "s")
    first = add_event(control_db, clock=clock)
    second = add_event(control_db, clock=clock)
    receiver.script = [410]
    worker = worker_for(control_db, clock)
    await drain(worker)
    await worker.close()
    row = delivery(control_db, first)
    assert row.status == "failed" and row.last_status_code == 410 and row.attempts == 1
    assert delivery(control_db, second).status == "delivered"


@pytest.mark.parametrize("status", [408, 429])
async def test_408_and_429_are_retried_honouring_retry_after(control_db, receiver, status):
    clock = Clock()
    add_endpoint(control_db, receiver.url(), "s")
    event_id = add_event(control_db, clock=clock)
    receiver.script = [(status, {"Retry-After": "120"})]
    worker = worker_for(control_db, clock)
    await worker.deliver_due()
    row = delivery(control_db, event_id)
    assert row.status == "pending" and row.last_status_code == status
    assert row.next_attempt_at == clock() + timedelta(seconds=120)
    clock.advance(seconds=119)
    assert await worker.deliver_due() == 0
    clock.advance(seconds=1)
    assert await worker.deliver_due() == 1
    await worker.close()
    assert delivery(control_db, event_id).status == "delivered"


def test_retry_after_as_seconds_or_http_date():
    assert parse_retry_after("7", T0) == timedelta(seconds=7)
    assert parse_retry_after("Tue, 01 Jan 2030 12:05:00 GMT", T0) == timedelta(minutes=5)
    assert parse_retry_after("soon", T0) is None and parse_retry_after(None, T0) is None


async def test_an_event_older_than_the_max_age_is_given_up(control_db, receiver):
    clock = Clock()
    add_endpoint(control_db, receiver.url(), "s")
    event_id = add_event(control_db, clock=clock)
    await receiver.stop()
    worker = worker_for(control_db, clock, max_age=timedelta(hours=6))
    for _ in range(40):
        if not await worker.deliver_due():
            clock.advance(minutes=30)
    await worker.close()
    row = delivery(control_db, event_id)
    assert row.status == "failed" and "gave up" in row.last_error
    assert clock() - T0 >= timedelta(hours=6)


async def test_a_url_the_guard_refuses_is_never_connected_to(control_db):
    clock = Clock()
    add_endpoint(control_db, "http://169.254.169.254/latest/meta-data", "s")
    event_id = add_event(control_db, clock=clock)
    worker = worker_for(control_db, clock)
    await worker.deliver_due()
    await worker.close()
    row = delivery(control_db, event_id)
    assert row.status == "failed" and row.last_error.startswith("refused")


async def test_deliveries_survive_a_new_worker_and_a_dead_one(control_db, receiver):
    """Pending deliveries live in the database: a worker killed after claiming leaves
    its delivery to the next one once the lease runs out."""
    clock = Clock()
    add_endpoint(control_db, receiver.url(), "s")
    event_id = add_event(control_db, clock=clock)
    Outbox(control_db).claim_due(clock(), lease=timedelta(seconds=60))  # a worker that died
    worker = worker_for(control_db, clock)
    assert await worker.deliver_due() == 0
    clock.advance(seconds=61)
    assert await worker.deliver_due() == 1
    await worker.close()
    assert delivery(control_db, event_id).status == "delivered"
