"""``recfw spool list|upload`` use each recording's own destination, recorded when it
started: a meeting's file never lands in the organization default's bucket (two
buckets on moto), and storing it marks its row and sends ``recording.finished``."""

from __future__ import annotations

import os
import subprocess

from recfw.config import parse_config
from recfw.control import Database, Recording, RecordingStore
from recfw.control.crypto import new_key
from recfw.control.models import OutboxEvent
from sqlalchemy import select

from .test_demo import RECFW

CONFIG = """
[recording]
type = "cloud"

[recording.destination]
provider = "s3"
bucket = "{bucket}"
accessKeyId = "{key_id}"
accessKeySecret = "{secret}"
endpointUrl = "{endpoint}"
fileFormat = "mkv"

[server]
allowedDestinations = ["{allowed}"]
"""


def test_spool_upload_stores_each_file_in_its_own_bucket(tmp_path, s3_server):
    meeting_bucket = s3_server.create_bucket()
    default_bucket = s3_server.create_bucket()
    (tmp_path / "recfw.toml").write_text(
        CONFIG.format(
            bucket=default_bucket,
            key_id=s3_server.access_key_id,
            secret=s3_server.secret_access_key,
            endpoint=s3_server.endpoint_url,
            allowed=s3_server.allowed_destination,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    env.update(RECFW_DATA_DIR=str(tmp_path / "data"), RECFW_SECRET_KEY=new_key())
    spool = tmp_path / "spool"
    spool.mkdir()
    theirs, unknown = spool / "meeting-2030-01-01T12:00:00Z.mkv", spool / "other.mkv"
    theirs.write_bytes(b"meeting bytes" * 1000)
    unknown.write_bytes(b"unrecorded bytes" * 1000)
    db = Database.open(parse_config({}, environ={}), env)
    with db.session() as s:
        RecordingStore().create(
            s,
            room_name="meeting",
            filename=theirs.name,
            destination=s3_server.destination(meeting_bucket).to_dict(reveal=True),
            spool_path=str(theirs.resolve()),
        )
    with db.session() as s:
        row = s.scalar(select(Recording))
        RecordingStore().update(s, row, status="kept", reason="storage was down")

    def recfw(*args):
        return subprocess.run(
            [RECFW, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    listed = recfw("spool", "list", "--config", "recfw.toml", "--spool", "spool")
    assert listed.returncode == 0, listed.stderr
    assert f"to s3:{meeting_bucket}" in listed.stdout and "storage was down" in listed.stdout
    assert "no record: goes to the configured destination" in listed.stdout
    assert s3_server.secret_access_key not in listed.stdout + listed.stderr

    result = recfw("spool", "upload", "--config", "recfw.toml", "--spool", "spool")
    assert result.returncode == 0, result.stdout + result.stderr
    assert s3_server.keys(meeting_bucket) == [theirs.name]
    assert s3_server.keys(default_bucket) == [unknown.name]
    assert not theirs.exists() and not unknown.exists()
    with db.session(readonly=True) as s:
        row = s.scalar(select(Recording))
        assert row.status == "stored" and row.location == f"s3://{meeting_bucket}/{theirs.name}"
        [event] = s.scalars(select(OutboxEvent)).all()
        assert event.type == "recording.finished"
        assert event.payload["data"]["recordingId"] == row.recording_id
    db.dispose()
    for bucket in (meeting_bucket, default_bucket):
        s3_server.delete_bucket(bucket)
