"""The repository layer on SQLite and PostgreSQL: meetings, recordings, keys, org settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from recfw.control import (
    ApiKeyStore,
    MeetingStore,
    OrgSettingsStore,
    RecordingStore,
    RoomNameTaken,
)
from recfw.errors import SettingsError

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
END = T0 + timedelta(days=1)


def _meeting(s, name: str, **kw):
    return MeetingStore().create(s, room_name=name, end_date=END, **kw)


def test_meeting_round_trip(control_db):
    with control_db.session() as s:
        created = _meeting(
            s,
            "r1",
            room_url="http://x/r1",
            room_name_prefix="",
            room_name_pattern="human-short",
            room_mode="group",
            is_locked=True,
            fields=["hostRoomUrl"],
            template_type="viewerMode",
        )
        meeting_id = created.meeting_id
    with control_db.session(readonly=True) as s:
        got = MeetingStore().get(s, meeting_id)
        assert (got.room_name, got.room_mode, got.is_locked) == ("r1", "group", True)
        assert got.fields == ["hostRoomUrl"] and got.room_name_prefix == ""
        assert got.end_date == END and got.end_date.tzinfo is not None
        assert got.recording is None and got.recording_revealed() is None
        assert MeetingStore().by_room(s, "r1").meeting_id == meeting_id


def test_room_names_are_never_reused_even_after_delete(control_db):
    with control_db.session() as s:
        meeting_id = _meeting(s, "taken").meeting_id
    with control_db.session() as s:
        assert MeetingStore().delete(s, meeting_id) is True
    with control_db.session() as s:
        assert MeetingStore().delete(s, meeting_id) is False  # idempotent
        assert MeetingStore().delete(s, "no-such-id") is None
        with pytest.raises(RoomNameTaken):
            _meeting(s, "taken")
        _meeting(s, "other")  # the session is still usable
    with control_db.session(readonly=True) as s:
        assert MeetingStore().get(s, meeting_id) is None
        assert MeetingStore().get(s, meeting_id, deleted=True).closed_at is not None
        assert [m.room_name for m in MeetingStore().list(s).items] == ["other"]


def test_meeting_pages_cover_every_meeting_once(control_db):
    with control_db.session() as s:
        for i in range(7):  # same created_at for some: the id breaks ties
            m = _meeting(s, f"room-{i}")
            m.created_at = T0 + timedelta(seconds=i // 2)
    seen, cursor, pages = [], None, 0
    while True:
        with control_db.session(readonly=True) as s:
            page = MeetingStore().list(s, cursor=cursor, limit=3)
        seen += [m.room_name for m in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == [f"room-{i}" for i in range(7)] and len(seen) == 7
    with control_db.session(readonly=True) as s:
        newest = MeetingStore().list(s, limit=2, descending=True).items
        assert newest[0].room_name == "room-6"  # alone at T0+3s
        assert newest[1].room_name in {"room-4", "room-5"}  # tied at T0+2s


@pytest.mark.parametrize("cursor", ["garbage!", "e30", "WzEsMl0"])
def test_a_bad_cursor_or_limit_names_the_field(control_db, cursor):
    with control_db.session(readonly=True) as s:
        with pytest.raises(SettingsError) as info:
            MeetingStore().list(s, cursor=cursor)
        assert info.value.errors[0].field == "cursor"
        for limit in (0, 101):
            with pytest.raises(SettingsError) as info:
                MeetingStore().list(s, limit=limit)
            assert info.value.errors[0].field == "limit"


def test_meetings_due_to_close_and_delete(control_db):
    with control_db.session() as s:
        a = MeetingStore().create(s, room_name="a", end_date=T0).meeting_id
        MeetingStore().create(s, room_name="b", end_date=T0 + timedelta(hours=2))
    with control_db.session() as s:
        assert [m.meeting_id for m in MeetingStore().due_to_close(s, T0)] == [a]
        assert MeetingStore().close(s, a, T0) is True
        assert MeetingStore().close(s, a, T0) is False
        assert MeetingStore().due_to_close(s, T0) == []
        assert MeetingStore().due_to_delete(s, T0 + timedelta(minutes=59)) == []
        assert [m.room_name for m in MeetingStore().due_to_delete(s, T0 + timedelta(hours=1))] == [
            "a"
        ]


def _recording(s, room: str, start: datetime, **kw):
    return RecordingStore().create(
        s,
        room_name=room,
        filename=f"{room}-{start.isoformat()}.mkv",
        destination={"provider": "s3", "bucket": f"bucket-{room}", "accessKeySecret": "S/x"},
        start_date=start,
        **kw,
    )


def test_recordings_list_by_room_sorted_and_paged(control_db):
    with control_db.session() as s:
        for i in range(5):
            _recording(s, "alpha" if i % 2 == 0 else "beta", T0 + timedelta(minutes=i))
    with control_db.session(readonly=True) as s:
        store = RecordingStore()
        alpha = store.list(s, room_name="/alpha").items  # Whereby's roomName has a slash
        assert [r.start_date for r in alpha] == [T0 + timedelta(minutes=m) for m in (4, 2, 0)]
        asc = store.list(s, sort_by="startDate:asc", limit=2)
        assert [r.start_date.minute for r in asc.items] == [0, 1]
        rest = store.list(s, sort_by="startDate:asc", limit=10, cursor=asc.next_cursor)
        assert [r.start_date.minute for r in rest.items] == [2, 3, 4] and rest.next_cursor is None
        with pytest.raises(SettingsError) as info:
            store.list(s, sort_by="size:up")
        assert info.value.errors[0].field == "sortBy"


def test_recording_status_and_soft_delete(control_db):
    with control_db.session() as s:
        recording_id = _recording(s, "r", T0, spool_path="/spool/r.mkv", node="n1").recording_id
    with control_db.session() as s:
        store = RecordingStore()
        row = store.update(s, recording_id, status="kept", reason="S3 unreachable", size_bytes=10)
        assert (row.status, row.reason, row.size_bytes) == ("kept", "S3 unreachable", 10)
        store.update(s, recording_id, status="stored", location="s3://bucket-r/r.mkv", reason=None)
        with pytest.raises(ValueError):
            store.update(s, recording_id, status="lost")
        assert store.by_spool_path(s, "/spool/r.mkv").recording_id == recording_id
    with control_db.session() as s:
        row = RecordingStore().get(s, recording_id)
        assert (row.status, row.location, row.reason) == ("stored", "s3://bucket-r/r.mkv", None)
        assert row.destination == {"provider": "s3", "bucket": "bucket-r"}
        assert RecordingStore().delete(s, recording_id) is True
        assert RecordingStore().delete(s, recording_id) is False
        assert RecordingStore().get(s, recording_id) is None
        assert RecordingStore().list(s).items == []


def test_claim_uploads_leases_each_kept_recording_to_one_uploader(control_db):
    with control_db.session() as s:
        kept = _recording(s, "k", T0, node="n1")
        kept.status = "kept"
        later = _recording(s, "later", T0, node="n1")
        later.status, later.next_attempt_at = "kept", T0 + timedelta(hours=1)
        elsewhere = _recording(s, "else", T0, node="n2")
        elsewhere.status = "kept"
        _recording(s, "live", T0, node="n1").status = "uploading"  # a live upload
    lease = timedelta(minutes=5)
    with control_db.session() as s:
        claimed = RecordingStore().claim_uploads(s, T0, node="n1", lease=lease)
        assert [r.room_name for r in claimed] == ["k"]
        assert claimed[0].status == "uploading" and claimed[0].attempts == 1
    with control_db.session() as s:
        assert RecordingStore().claim_uploads(s, T0 + timedelta(minutes=1), node="n1") == []
    with control_db.session() as s:  # the claimer died: the lease runs out
        again = RecordingStore().claim_uploads(s, T0 + lease, node="n1")
        assert [r.room_name for r in again] == ["k"] and again[0].attempts == 2


def test_api_keys_are_stored_hashed_and_can_be_revoked(control_db):
    with control_db.session() as s:
        new = ApiKeyStore().create(s, "ci", admin=True)
    assert new.key.startswith("rfk_") and len(new.key) > 40
    with control_db.session() as s:
        (row,) = ApiKeyStore().list(s)
        assert row.hash != new.key and new.key not in repr(vars(row))
        assert row.prefix == new.key[:12]
        found = ApiKeyStore().verify(s, new.key, T0)
        assert found is not None and found.admin and found.last_used_at == T0
        assert ApiKeyStore().verify(s, new.key[:-1] + "x", T0) is None
        assert ApiKeyStore().verify(s, "not-a-key", T0) is None
        assert ApiKeyStore().revoke(s, row.prefix).revoked_at is not None
    with control_db.session() as s:
        assert ApiKeyStore().verify(s, new.key) is None
        assert ApiKeyStore().list(s, revoked=False) == []


def test_the_config_seeds_org_settings_until_they_are_edited_in_the_database(control_db):
    first = {"type": "cloud", "destination": {"provider": "s3", "accessKeySecret": "a/b"}}
    second = {"type": "local", "destination": {"provider": "local", "bucket": "rec"}}
    with control_db.session() as s:
        assert OrgSettingsStore().seed(s, first, "recfw.toml") is True
        assert OrgSettingsStore().seed(s, first, "recfw.toml") is False  # unchanged
    with control_db.session() as s:
        assert OrgSettingsStore().recording(s) == first
        assert OrgSettingsStore().seed(s, second, "other.toml") is True  # config still wins
        assert OrgSettingsStore().recording(s) == second
        OrgSettingsStore().replace(s, {"type": "none"})  # edited through the API
    with control_db.session() as s:
        assert OrgSettingsStore().seed(s, first, "recfw.toml") is False  # the database wins
    with control_db.session(readonly=True) as s:
        assert OrgSettingsStore().recording(s) == {"type": "none"}
