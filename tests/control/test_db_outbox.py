"""The outbox: events commit with their state, deliveries go in order per endpoint."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from recfw.control import EndpointStore, MeetingStore, Outbox
from recfw.control.models import OutboxEvent, WebhookDelivery
from sqlalchemy import func, select

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def envelope(event_type: str = "recording.finished", **data) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "apiVersion": "1.0",
        "createdAt": "2030-01-01T12:00:00.000Z",
        "type": event_type,
        "data": data,
    }


def _count(db, model) -> int:
    with db.session(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_an_event_commits_or_rolls_back_with_its_state(control_db):
    with control_db.session() as s:
        EndpointStore().add(s, "http://127.0.0.1:9/hook", "secret")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), control_db.session() as s:
        MeetingStore().create(s, room_name="r", end_date=T0)
        Outbox.add(s, envelope("room.client.joined"))
        raise Boom
    assert _count(control_db, OutboxEvent) == 0 and _count(control_db, WebhookDelivery) == 0
    with control_db.session() as s:
        MeetingStore().create(s, room_name="r", end_date=T0)
        Outbox.add(s, envelope("room.client.joined"))
    assert _count(control_db, OutboxEvent) == 1 and _count(control_db, WebhookDelivery) == 1


def test_one_delivery_per_endpoint_that_wants_the_event(control_db):
    with control_db.session() as s:
        every = EndpointStore().add(s, "http://127.0.0.1:9/every", "s1")
        only = EndpointStore().add(s, "http://127.0.0.1:9/only", "s2", ["recording.finished"])
        off = EndpointStore().add(s, "http://127.0.0.1:9/off", "s3")
        EndpointStore().disable(s, off.id)
    with control_db.session() as s:
        Outbox.add(s, envelope("room.client.joined"))
        Outbox.add(s, envelope("recording.finished"))
    with control_db.session(readonly=True) as s:
        rows = s.execute(select(WebhookDelivery.endpoint_id, WebhookDelivery.event_id)).all()
    by_endpoint = {}
    for endpoint_id, _ in rows:
        by_endpoint[endpoint_id] = by_endpoint.get(endpoint_id, 0) + 1
    assert by_endpoint == {every.id: 2, only.id: 1}


def test_deliveries_go_in_order_per_endpoint_with_leases(control_db):
    with control_db.session() as s:
        a = EndpointStore().add(s, "http://127.0.0.1:9/a", "sa")
    with control_db.session() as s:
        b = EndpointStore().add(s, "http://127.0.0.1:9/b", "sb", ["room.client.left"])
    events = []
    for kind in ("room.client.joined", "room.client.left", "recording.finished"):
        with control_db.session() as s:
            events.append(Outbox.add(s, envelope(kind)).id)
    outbox = Outbox(control_db)
    first = outbox.claim_due(T0 + timedelta(days=9999), limit=10)
    # a: only its oldest; b: its only one (the second event)
    assert sorted((c.url, c.event_id) for c in first) == sorted(
        [(a.url, events[0]), (b.url, events[1])]
    )
    claimed_a = next(c for c in first if c.endpoint_id == a.id)
    assert claimed_a.secret.reveal() == "sa" and claimed_a.payload["id"] == events[0]
    assert claimed_a.attempts == 1
    now = datetime.now(UTC)
    assert outbox.claim_due(now) == []  # leased: nobody else takes them, nothing overtakes
    outbox.retry_at(claimed_a.id, now, status_code=503, error="503 Service Unavailable")
    again = outbox.claim_due(now)
    assert [(c.event_id, c.attempts) for c in again] == [(events[0], 2)]
    outbox.delivered(claimed_a.id, 200)
    assert [c.event_id for c in outbox.claim_due(now)] == [events[1]]


def test_a_permanent_failure_does_not_block_the_next_event(control_db):
    with control_db.session() as s:
        EndpointStore().add(s, "http://127.0.0.1:9/a", "sa")
    ids = []
    for _ in range(2):
        with control_db.session() as s:
            ids.append(Outbox.add(s, envelope()).id)
    outbox = Outbox(control_db)
    now = datetime.now(UTC)
    (first,) = outbox.claim_due(now)
    outbox.failed(first.id, status_code=410, error="410 Gone")
    (second,) = outbox.claim_due(now)
    assert second.event_id == ids[1]
    with control_db.session() as s:
        assert Outbox.requeue(s, first.id, now)
        failed = Outbox.deliveries(s, status="failed")
        assert failed == []
        assert Outbox.pending_count(s) == 2


def test_concurrent_claimers_never_take_the_same_delivery(control_db):
    with control_db.session() as s:
        for i in range(30):
            EndpointStore().add(s, f"http://127.0.0.1:9/{i}", f"s{i}")
    with control_db.session() as s:
        for _ in range(2):
            Outbox.add(s, envelope())
    outbox = Outbox(control_db)
    taken: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker() -> None:
        try:
            start.wait()
            while True:
                batch = outbox.claim_due(datetime.now(UTC), limit=3)
                if not batch:
                    return
                with lock:
                    taken.extend(c.id for c in batch)
                for c in batch:
                    outbox.delivered(c.id, 204)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(taken) == len(set(taken)) == 60
    with control_db.session(readonly=True) as s:
        assert Outbox.pending_count(s) == 0


def test_seq_follows_commit_order(control_db):
    with control_db.session() as s:
        EndpointStore().add(s, "http://127.0.0.1:9/a", "sa")
    ids = []
    for _ in range(5):
        with control_db.session() as s:
            ids.append(Outbox.add(s, envelope()).id)
    with control_db.session(readonly=True) as s:
        ordered = list(s.scalars(select(OutboxEvent.id).order_by(OutboxEvent.seq)))
    assert ordered == ids


def test_a_second_writer_waits_until_the_first_commits(control_db):
    """Without this, seq 2 could commit (and be delivered) before seq 1 exists."""
    with control_db.session() as s:
        EndpointStore().add(s, "http://127.0.0.1:9/a", "sa")
    first_added, release, second_done = threading.Event(), threading.Event(), threading.Event()
    ids: dict[str, str] = {}

    def first() -> None:
        with control_db.session() as s:
            ids["first"] = Outbox.add(s, envelope()).id
            first_added.set()
            release.wait(60)

    def second() -> None:
        first_added.wait(60)
        with control_db.session() as s:
            ids["second"] = Outbox.add(s, envelope()).id
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    assert first_added.wait(60)
    assert not second_done.wait(0.5)  # blocked behind the first transaction
    release.set()
    for t in threads:
        t.join(60)
    assert second_done.is_set()
    with control_db.session(readonly=True) as s:
        ordered = list(s.scalars(select(OutboxEvent.id).order_by(OutboxEvent.seq)))
    assert ordered == [ids["first"], ids["second"]]
