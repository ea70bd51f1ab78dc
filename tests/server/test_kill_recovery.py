"""The "done when" test of issue 8: nothing is lost when everything goes down at once.

``recfw run`` records a meeting that has its own bucket. While it records, the
meeting's S3 endpoint (a moto server) and the webhook receiver (an aiohttp
server) go down, and the server is killed with SIGKILL. All three come back,
the server starts again, and then:

* the meeting is still there, the recording ends up in the meeting's own bucket
  (not the organization default's), and its row and ``GET /v1/recordings`` say
  ``stored``;
* every event in the outbox reached the receiver (duplicates only with the same
  ``webhook-id``), each signed both ways;
* the server then stops cleanly.

On SQLite and on PostgreSQL. The meeting is still there after the restart
(``GET /v1/meetings/{id}``) and ``GET /v1/recordings`` lists the recording as
stored; the database is also read directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from recfw.config import parse_config
from recfw.control import Database, Recording
from recfw.control.crypto import new_key
from recfw.control.models import OutboxEvent
from recfw.events import SIGNATURE_HEADER, verify
from recfw.manager import load_plugins
from recfw.rooms import Participant
from recfw.server.client import HeadlessParticipant
from recfw.server.ice import unrestrict_host_addresses
from recfw.testing.processes import drain, start_run
from recfw.testing.s3server import S3Server
from recfw.testing.webhooks import WebhookReceiver
from sqlalchemy import select

API_KEY = "kill-test-api-key-0123456789"
WEBHOOK_SECRET = "kill-test-webhook-secret"

CONFIG = """
[recording]
type = "cloud"
startTrigger = "automatic"

[recording.destination]
provider = "s3"
bucket = "{default_bucket}"
accessKeyId = "{key_id}"
accessKeySecret = "{secret}"
endpointUrl = "{endpoint}"
region = "{region}"
fileFormat = "mkv"

[server]
host = "127.0.0.1"
port = 0
iceAddresses = ["127.0.0.1"]
allowedDestinations = ["{s3_allowed}", "127.0.0.1:{receiver_port}"]

[[webhooks]]
url = "http://127.0.0.1:{receiver_port}/hooks"
secret = "{webhook_secret}"
"""


async def wait_for(predicate, timeout: float, what: str, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(step)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str | None:
    """``None``: the embedded SQLite in the data folder; else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url.rsplit("/", 1)[1])


@pytest.mark.slow
async def test_kill_with_storage_and_receiver_down_loses_nothing(tmp_path, database_url):
    s3 = S3Server().start()
    receiver = WebhookReceiver()
    await receiver.start()
    meeting_bucket = s3.create_bucket()
    default_bucket = s3.create_bucket()
    (tmp_path / "recfw.toml").write_text(
        CONFIG.format(
            default_bucket=default_bucket,
            key_id=s3.access_key_id,
            secret=s3.secret_access_key,
            endpoint=s3.endpoint_url,
            region=s3.region,
            s3_allowed=s3.allowed_destination,
            receiver_port=receiver.port,
            webhook_secret=WEBHOOK_SECRET,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    env.update(
        RECFW_API_KEY=API_KEY,
        RECFW_SECRET_KEY=new_key(),
        RECFW_HOST_SECRET="kill-test-host-secret",
        RECFW_WEBHOOK_EXIT_WAIT="1",
    )
    if database_url is not None:
        env["RECFW_DATABASE_URL"] = database_url
    config = parse_config({"server": {"dataDir": str(tmp_path / ".recfw")}}, environ={})
    db = Database.open(config, env, upgrade=False)
    output: list[str] = []
    proc = None
    try:
        proc, base = await start_run(tmp_path, env)
        reading = asyncio.create_task(drain(proc, output))
        # A meeting with its own bucket.
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                f"{base}/v1/meetings",
                headers={"Authorization": f"Bearer {API_KEY}"},
                json={
                    "endDate": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                    "recording": {
                        "type": "cloud",
                        "destination": {
                            "provider": "s3",
                            "bucket": meeting_bucket,
                            "accessKeyId": s3.access_key_id,
                            "accessKeySecret": s3.secret_access_key,
                            "endpointUrl": s3.endpoint_url,
                            "region": s3.region,
                            "fileFormat": "mkv",
                        },
                    },
                },
            )
            assert answer.status == 201, await answer.text()
            meeting = await answer.json()
        room = meeting["roomName"].lstrip("/")
        source = load_plugins().get("sources", "synthetic")
        media = source.create(Participant(id="synthetic-guest", display_name="Syn"), {})
        async with HeadlessParticipant(f"{base}/{room}", media, name="Syn"):

            def recording_row():
                with db.session(readonly=True) as s:
                    row = s.scalar(select(Recording))
                    if row is None or not row.spool_path:
                        return None
                    path = Path(row.spool_path)
                    return row if path.exists() and path.stat().st_size > 50_000 else None

            row = await wait_for(recording_row, 90, "a recording with some bytes in the spool")
            assert row.status == "recording"
            assert row.destination["bucket"] == meeting_bucket
            # Everything goes down: storage, the receiver, then the server itself.
            s3.stop()
            await receiver.stop()
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 30)
            await asyncio.wait_for(reading, 10)
        unrestrict_host_addresses()
        spool_file = Path(row.spool_path)
        assert spool_file.exists(), "the killed recording's file must stay in the spool"

        # All three come back.
        s3 = S3Server(port=s3.port).start()
        await receiver.start()
        proc, base = await start_run(tmp_path, env)
        reading = asyncio.create_task(drain(proc, output))

        def stored():
            with db.session(readonly=True) as s:
                again = s.get(Recording, row.recording_id)
                return again if again.status == "stored" else None

        final = await wait_for(stored, 120, "the kept recording to be stored")
        assert final.location == f"s3://{meeting_bucket}/{final.filename}"
        assert s3.keys(meeting_bucket) == [final.filename]
        assert s3.keys(default_bucket) == [], "never into the organization default's bucket"
        assert not spool_file.exists()
        # The meeting survived the kill, and the recordings API lists the file as stored.
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            async with http.get(f"{base}/v1/meetings/{meeting['meetingId']}") as got:
                assert got.status == 200, await got.text()
                assert (await got.json())["roomName"] == meeting["roomName"]
            async with http.get(f"{base}/v1/recordings", params={"roomName": f"/{room}"}) as got:
                assert got.status == 200, await got.text()
                listed = (await got.json())["results"]
        assert [(r["recordingId"], r["status"]) for r in listed] == [(row.recording_id, "stored")]
        assert listed[0]["filename"] == final.filename

        def all_events_received():
            with db.session(readonly=True) as s:
                ids = [e.id for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))]
            got = {h.get("webhook-id") for h, _ in receiver.posts}
            return ids if ids and set(ids) <= got else None

        ids = await wait_for(all_events_received, 60, "every event at the receiver")
        by_id: dict[str, bytes] = {}
        for headers, body in receiver.posts:
            envelope = json.loads(body)
            assert headers["webhook-id"] == envelope["id"]
            assert verify(body, headers[SIGNATURE_HEADER], WEBHOOK_SECRET)
            # a duplicate is the same event (same id, same content)
            if envelope["id"] in by_id:
                assert json.loads(by_id[envelope["id"]]) == envelope
            by_id[envelope["id"]] = body
        types = [json.loads(by_id[i])["type"] for i in ids]
        assert types[:3] == ["room.client.joined", "room.client.joined", "recording.started"]
        assert types[-1] == "recording.finished"
        finished = json.loads(by_id[ids[-1]])["data"]
        assert finished["recordingId"] == row.recording_id
        assert finished["filename"] == final.filename and finished["status"] == "completed"
        assert finished["roomName"] == f"/{room}"

        # A clean stop afterwards: nothing pending keeps the process waiting.
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)
        await asyncio.wait_for(reading, 10)
        assert proc.returncode == 0, "".join(output)
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        unrestrict_host_addresses()
        db.dispose()
        await receiver.stop()
        s3.stop()
