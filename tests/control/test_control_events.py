"""Engine events into the control plane: the recording's row and the outbox, together;
kept recordings stored later by the background uploader, to their own bucket.

Real parts: the synthetic source, the encoder, the local and S3 sinks (moto on
loopback), SQLite and PostgreSQL (``control_db``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from engine.test_engine import HOST, make_engine, settings_for
from recfw.control import Recording
from recfw.control.events import ControlEvents
from recfw.control.models import OutboxEvent
from recfw.control.uploader import BackgroundUploader, UploadPolicy
from recfw.events import RECORDING_FINISHED, Event
from recfw.settings import EMBEDDED_DEFAULT, effective, parse_recording
from recfw.spool import pending
from recfw.storage import StoredObject
from sqlalchemy import select


def rows(db) -> list[Recording]:
    with db.session(readonly=True) as s:
        return list(s.scalars(select(Recording)))


def outbox(db) -> list[dict]:
    with db.session(readonly=True) as s:
        return [e.payload for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))]


async def test_every_event_updates_its_row_and_enters_the_outbox(
    control_db, plugins, events, tmp_path
):
    control = ControlEvents(control_db, node="node-a")
    engine = make_engine(plugins, settings_for(plugins, tmp_path), tmp_path, control=control)
    await engine.join(HOST)
    await asyncio.sleep(0.5)
    # A row from the first byte, with its own destination.
    [row] = rows(control_db)
    assert row.status == "recording" and row.node == "node-a"
    assert row.destination["provider"] == "local"
    assert row.destination["bucket"] == str(tmp_path / "out")
    assert Path(row.spool_path).parent == (tmp_path / "spool").resolve()
    await engine.leave(HOST.id)
    await engine.wait_stored()
    [row] = rows(control_db)
    assert row.status == "stored" and row.size_bytes > 0 and row.location
    assert row.end_date is not None and row.duration_s > 0
    sent = outbox(control_db)
    # The third-party listener got exactly the events the outbox has, in the same order.
    assert [e["id"] for e in sent] == [e["id"] for e in events.events]
    assert [e["type"] for e in sent] == [
        "room.client.joined",
        "room.client.joined",  # the recorder
        "recording.started",
        "room.client.left",
        "room.client.left",  # the recorder
        "recording.finished",
    ]
    finished = sent[-1]["data"]
    assert finished["status"] == "completed"
    assert finished["recordingId"] == row.recording_id
    assert finished["filename"] == row.filename and finished["roomName"] == "/standup"
    joined = sent[0]["data"]
    for field in (
        "meetingId",
        "roomName",
        "roomSessionId",
        "participantId",
        "displayName",
        "roleName",
        "numClients",
        "numClientsByRoleName",
        "metadata",
        "externalId",
    ):
        assert field in joined


async def test_a_failed_store_keeps_the_recording_for_its_own_destination(
    control_db, plugins, tmp_path, s3_server
):
    """Storage down: the recording is ``kept`` with why; the background uploader later
    stores it in the meeting's own bucket, never the organization default's."""
    own = s3_server.create_bucket()
    default_bucket = s3_server.create_bucket()
    missing = f"{own}-not-yet"  # the meeting's bucket does not exist yet: storing fails
    default = effective(
        EMBEDDED_DEFAULT,
        parse_recording(
            {
                "type": "cloud",
                "destination": _s3(s3_server, default_bucket),
                "startTrigger": "automatic",
            }
        ),
        plugins,
        environ={},
    )
    meeting = effective(
        default, parse_recording({"destination": _s3(s3_server, missing)}), plugins, environ={}
    )
    control = ControlEvents(control_db, node="node-a", default_destination=default.destination)
    engine = make_engine(plugins, meeting, tmp_path, control=control)
    await engine.join(HOST)
    await asyncio.sleep(0.5)
    await engine.leave(HOST.id)
    await engine.wait_stored()
    [row] = rows(control_db)
    assert row.status == "kept" and row.reason and Path(row.spool_path).exists()
    assert s3_server.secret_access_key not in (row.reason or "")
    assert outbox(control_db)[-1]["type"] == "recording.failed"
    # Credentials are encrypted at rest: not in the row's plain JSON.
    assert "accessKeySecret" not in (row.destination or {})
    # The bucket comes back (created); the uploader stores the file there.
    s3_server.create_bucket(missing)
    uploader = BackgroundUploader(
        control_db, plugins, control, UploadPolicy(), clock=lambda: row.next_attempt_at
    )
    [(recording_id, result)] = uploader.run_once()
    assert recording_id == row.recording_id and result.outcome == "stored"
    [row] = rows(control_db)
    assert row.status == "stored" and row.location.startswith(f"s3://{missing}/")
    assert s3_server.keys(missing) == [row.filename]
    assert s3_server.keys(default_bucket) == []
    assert outbox(control_db)[-1]["type"] == "recording.finished"
    assert outbox(control_db)[-1]["data"]["status"] == "completed"
    assert pending(tmp_path / "spool") == []
    for bucket in (own, default_bucket, missing):
        s3_server.delete_bucket(bucket)


async def test_a_killed_recording_is_recovered_and_an_empty_one_removed(
    control_db, plugins, tmp_path
):
    """Rows a killed process left ``recording``: kept when the file holds something
    (then stored), failed and removed when it is empty."""
    spool = tmp_path / "spool"
    spool.mkdir()
    dest = {"provider": "local", "bucket": str(tmp_path / "out"), "fileFormat": "mkv"}
    from recfw.control import RecordingStore

    full, empty = spool / "a.mkv", spool / "b.mkv"
    full.write_bytes(b"\x1a\x45\xdf\xa3" + b"x" * 1000)
    empty.write_bytes(b"")
    with control_db.session() as s:
        for path in (full, empty):
            RecordingStore().create(
                s,
                room_name="r",
                filename=path.name,
                destination=dest,
                spool_path=str(path),
                node="node-a",
            )
    control = ControlEvents(control_db, node="node-a")
    uploader = BackgroundUploader(control_db, plugins, control)
    results = dict(uploader.run_once())
    by_file = {r.filename: r for r in rows(control_db)}
    assert by_file["a.mkv"].status == "stored"
    assert (tmp_path / "out" / "a.mkv").read_bytes() == b"\x1a\x45\xdf\xa3" + b"x" * 1000
    assert by_file["b.mkv"].status == "failed" and "empty" in by_file["b.mkv"].reason
    assert not empty.exists() and not full.exists()
    assert {r.outcome for r in results.values()} == {"stored", "empty"}
    types = [e["type"] for e in outbox(control_db)]
    assert sorted(types) == ["recording.failed", "recording.finished"]


def _s3(s3_server, bucket: str) -> dict:
    return {
        "provider": "s3",
        "bucket": bucket,
        "accessKeyId": s3_server.access_key_id,
        "accessKeySecret": s3_server.secret_access_key,
        "endpointUrl": s3_server.endpoint_url,
        "region": s3_server.region,
        "fileFormat": "mkv",
    }


@pytest.fixture
def plugins():
    from recfw.manager import Plugins

    p = Plugins(environ={})
    p.load_entry_points()
    return p


@pytest.fixture
def events(plugins):
    from engine.conftest import EventLog

    log = EventLog()
    plugins.register(log, name="event-log")
    yield log
    plugins.unregister("event-log")


def test_the_uploader_and_spool_upload_never_store_one_file_twice(control_db, plugins, tmp_path):
    """A file another uploader holds (``recfw spool upload``) is skipped as busy and
    retried; once that one stored it, the row says ``stored`` and nothing is redone."""
    from recfw.control import RecordingStore
    from recfw.spool import SpoolLock, upload_file

    spool = tmp_path / "spool"
    spool.mkdir()
    path = spool / "r.mkv"
    path.write_bytes(b"\x1a\x45\xdf\xa3" + b"y" * 500)
    dest = {"provider": "local", "bucket": str(tmp_path / "out"), "fileFormat": "mkv"}
    with control_db.session() as s:
        row = RecordingStore().create(
            s, room_name="r", filename="r.mkv", destination=dest, spool_path=str(path), node="n"
        )
        RecordingStore().update(s, row, status="kept", reason="storage was down")
        recording_id = row.recording_id
    control = ControlEvents(control_db, node="n")
    uploader = BackgroundUploader(control_db, plugins, control)
    with SpoolLock(path):  # another uploader holds the file
        [(_, result)] = uploader.run_once()
    assert result.outcome == "busy"
    [row] = rows(control_db)
    assert row.status == "kept" and row.next_attempt_at is not None
    # The other uploader (recfw spool upload) stores it and records it.
    from recfw.control.uploader import row_destination

    done = upload_file(path, row_destination(row), plugins)
    assert done.outcome == "stored"
    control.stored(recording_id, done.stored)
    assert uploader.run_once() == []  # nothing left to do
    [row] = rows(control_db)
    assert row.status == "stored"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["r.mkv"]
    assert [e["type"] for e in outbox(control_db)] == ["recording.finished"]


async def test_a_stored_recording_told_twice_sends_one_recording_finished(
    control_db, plugins, events, tmp_path
):
    """A worker whose ``stored`` report waited for Redis may finish the row itself while
    the room server also hears of it: the row decides, one ``recording.finished``."""
    control = ControlEvents(control_db, node="node-a")
    engine = make_engine(plugins, settings_for(plugins, tmp_path), tmp_path, control=control)
    await engine.join(HOST)
    await asyncio.sleep(0.5)
    await engine.leave(HOST.id)
    await engine.wait_stored()
    [row] = rows(control_db)
    assert row.status == "stored"
    # Told again (as an uploader or a late report would): nothing more is sent.
    assert control.stored(row.recording_id, StoredObject(row.location, row.size_bytes))
    session = engine.sessions[-1]
    finished = [e for e in events.events if e["type"] == "recording.finished"]
    control.publish(Event(RECORDING_FINISHED, finished[0]["data"], subject=session))
    assert [e["type"] for e in outbox(control_db)].count("recording.finished") == 1
