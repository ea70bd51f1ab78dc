"""Customer secrets are encrypted at rest: no plaintext in the database, ever."""

from __future__ import annotations

import os
import stat
import threading
from datetime import UTC, datetime, timedelta

import pytest
from recfw.control import Database, EndpointStore, MeetingStore, OrgSettingsStore, RecordingStore
from recfw.control.crypto import (
    SECRET_KEY_ENV,
    Cipher,
    SecretKeyError,
    load_cipher,
    load_key_file,
    new_key,
)
from recfw.secrets import Secret
from sqlalchemy import text

# About half of real AWS secrets contain "/": keep one here.
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
HOOK_SECRET = "whsec-plain-text-marker-0123456789"
URL_SECRET = "inurl/Secret+Value"


def _store_everything(db: Database) -> None:
    destination = {
        "provider": "s3",
        "bucket": "customer-a/meetings",
        "accessKeyId": "AKIAEXAMPLE",
        "accessKeySecret": S3_SECRET,
        "endpointUrl": f"http://AKIAX:{URL_SECRET}@s3.example.com/",
        "fileFormat": "mkv",
    }
    with db.session() as s:
        meeting = MeetingStore().create(
            s,
            room_name="room-a",
            end_date=datetime.now(UTC) + timedelta(hours=1),
            recording={"type": "cloud", "destination": destination},
        )
        RecordingStore().create(
            s,
            room_name="room-a",
            filename="room-a-2026.mkv",
            destination=destination,
            meeting_id=meeting.meeting_id,
        )
        EndpointStore().add(s, "https://hooks.example.com/x", HOOK_SECRET)
        OrgSettingsStore().seed(s, {"type": "cloud", "destination": destination}, "test")


def _raw_text(db: Database) -> str:
    """Every value of every row, as the database returns it without recfw's types."""
    with db.engine.connect() as conn:
        out = []
        for table in ("meetings", "recordings", "webhook_endpoints", "org_settings"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                out.append(repr(tuple(row)))
        return "\n".join(out)


def test_no_secret_is_stored_in_plaintext(control_db):
    _store_everything(control_db)
    raw = _raw_text(control_db)
    assert "AKIAEXAMPLE" in raw  # the raw read does see the rows
    for secret in (S3_SECRET, HOOK_SECRET, URL_SECRET, "K7MDENG"):
        assert secret not in raw
    if control_db.kind == "sqlite":  # the file itself, WAL included
        path = control_db.url.database
        blob = b"".join(open(p, "rb").read() for p in (path, path + "-wal") if os.path.exists(p))
        assert b"AKIAEXAMPLE" in blob
        for secret in (S3_SECRET, HOOK_SECRET, URL_SECRET):
            assert secret.encode() not in blob


def test_secrets_read_back_through_the_models_only(control_db):
    _store_everything(control_db)
    with control_db.session(readonly=True) as s:
        meeting = MeetingStore().by_room(s, "room-a")
        assert "accessKeySecret" not in meeting.recording["destination"]
        assert meeting.recording["destination"]["endpointUrl"] == "http://s3.example.com/"
        assert isinstance(meeting.recording_secrets["destination.accessKeySecret"], Secret)
        assert S3_SECRET not in repr(meeting.recording_secrets)
        full = meeting.recording_revealed()
        assert full["destination"]["accessKeySecret"] == S3_SECRET
        assert full["destination"]["endpointUrl"].endswith(f"{URL_SECRET}@s3.example.com/")
        (endpoint,) = EndpointStore().list(s)
        assert endpoint.secret.reveal() == HOOK_SECRET
        assert HOOK_SECRET not in repr(endpoint.secret)
        recording = RecordingStore().list(s).items[0]
        assert recording.destination_revealed()["accessKeySecret"] == S3_SECRET


def test_a_wrong_key_is_refused_at_start(control_db):
    control_db.check_key()
    _store_everything(control_db)
    other = Database(control_db.url, Cipher([new_key().encode()], "RECFW_SECRET_KEY"))
    try:
        with pytest.raises(SecretKeyError, match="another key") as info:
            other.check_key()
        assert S3_SECRET not in str(info.value)
    finally:
        other.dispose()


def test_rotated_keys_still_read_old_secrets(control_db, tmp_path):
    _store_everything(control_db)
    old = control_db.cipher
    rotated = Database(control_db.url, Cipher([new_key().encode(), *old._keys], "rotated"))
    try:
        with rotated.session(readonly=True) as s:
            (endpoint,) = EndpointStore().list(s)
            assert endpoint.secret.reveal() == HOOK_SECRET
    finally:
        rotated.dispose()


def test_key_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "data" / "secret.key"
    results: list[str] = []

    def load() -> None:
        results.append(load_key_file(path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1  # everyone got the same key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temp files left
    assert (
        load_cipher(tmp_path / "data", environ={}).decrypt(
            Cipher([results[0].encode()], "x").encrypt("hello")
        )
        == "hello"
    )


def test_secret_key_from_the_environment(tmp_path):
    key = new_key()
    cipher = load_cipher(tmp_path, environ={SECRET_KEY_ENV: key})
    assert cipher.source == SECRET_KEY_ENV
    assert not (tmp_path / "secret.key").exists()
    token = cipher.encrypt("x")
    assert Cipher([key.encode()], "k").decrypt(token) == "x"
    passphrase = load_cipher(tmp_path, environ={SECRET_KEY_ENV: "p" * 40})
    assert passphrase.decrypt(passphrase.encrypt("y")) == "y"
    with pytest.raises(SecretKeyError, match=SECRET_KEY_ENV):
        load_cipher(tmp_path, environ={SECRET_KEY_ENV: "short"})
