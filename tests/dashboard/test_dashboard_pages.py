"""Error and empty states: bad input gets a page that names the field and says what to do,
never a traceback or a 5xx."""

from __future__ import annotations

from pathlib import Path

from dash_helpers import client, hidden, log_in, make_key


async def _logged_in(http, server, db) -> str:
    await log_in(http, server.base_url, make_key(db))
    async with http.get(f"{server.base_url}/dashboard/configure") as r:
        return hidden(await r.text())


async def test_bad_input_names_the_field(control_db, dash_server):
    server = await dash_server(control_db)
    base = f"{server.base_url}/dashboard"
    async with client() as http:
        csrf = await _logged_in(http, server, control_db)
        form = {
            "csrf": csrf,
            "provider": "s3",
            "bucket": "Not_A_Bucket",
            "accessKeyId": "AKIAEXAMPLE",
            "accessKeySecret": "very-secret-value",
            "endpointUrl": "http://10.1.2.3:9000",
            "authenticationType": "accessKey",
            "startTrigger": "automatic",
            "fileFormat": "mkv",
        }
        async with http.post(f"{base}/configure", data=form) as r:
            text = await r.text()
            assert r.status == 400
            assert "Not saved" in text and "bucket" in text and "endpointUrl" in text
            assert "very-secret-value" not in text
        before = server.settings
        async with http.post(f"{base}/configure/test", data=form) as r:
            assert r.status == 400
        assert server.settings is before  # nothing applied

        async with http.post(f"{base}/meetings", data={"csrf": csrf, "roomMode": "huge"}) as r:
            text = await r.text()
            assert r.status == 400
            assert "endDate" in text and "roomMode" in text

        async with http.post(
            f"{base}/webhooks", data={"csrf": csrf, "url": "http://10.1.2.3/hook"}
        ) as r:
            text = await r.text()
            assert r.status == 400 and "URL:" in text and "allowedDestinations" in text

        async with http.post(f"{base}/recordings/nope/retry", data={"csrf": csrf}) as r:
            assert r.status == 200  # after the redirect
            assert "not running" in await r.text() or "Only a kept" in await r.text()
        async with http.get(f"{base}/recordings/nope/download") as r:
            assert r.status == 200
            assert "does not exist" in await r.text()
        async with http.get(f"{base}/recordings?cursor=garbage") as r:
            assert r.status == 200
            assert "first page" in await r.text()


async def test_local_defaults_test_connection_and_save(control_db, dash_server, tmp_path):
    server = await dash_server(control_db)
    base = f"{server.base_url}/dashboard"
    folder = tmp_path / "kept-here"
    async with client() as http:
        csrf = await _logged_in(http, server, control_db)
        form = {
            "csrf": csrf,
            "provider": "local",
            "bucket": str(folder),
            "startTrigger": "none",
            "fileFormat": "mp4",
        }
        async with http.post(f"{base}/configure/test", data=form) as r:
            text = await r.text()
            assert r.status == 200 and "Test connection succeeded" in text
        assert list(folder.iterdir()) == []  # the probe file was deleted
        async with http.post(f"{base}/configure", data=form) as r:
            assert r.status == 200 and "Meetings created from now on" in await r.text()
    assert server.settings.start_trigger == "none"
    assert server.settings.destination.file_format == "mp4"


async def test_retry_hands_a_kept_recording_to_the_uploader(
    control_db, dash_server, builtin_plugins, tmp_path
):
    from datetime import UTC, datetime, timedelta

    from recfw.control import RecordingStore
    from recfw.control.events import ControlEvents
    from recfw.control.uploader import BackgroundUploader

    events = ControlEvents(control_db)
    server = await dash_server(control_db, control=events)
    spool = tmp_path / "spool-file.mkv"
    spool.write_bytes(b"kept bytes " * 100)
    folder = tmp_path / "stored-here"
    later = datetime.now(UTC) + timedelta(hours=5)
    with control_db.session() as s:
        store = RecordingStore()
        row = store.create(
            s,
            room_name="standup",
            filename="standup-2026-11-30T10:00:00Z.mkv",
            destination={"provider": "local", "bucket": str(folder), "fileFormat": "mkv"},
            spool_path=str(spool),
            node=events.node,
        )
        store.update(s, row, status="kept", reason="storage down", next_attempt_at=later)
        recording_id = row.recording_id
    uploader = BackgroundUploader(control_db, builtin_plugins, events)
    assert uploader.run_once() == []  # not due for five hours
    base = f"{server.base_url}/dashboard"
    async with client() as http:
        csrf = await _logged_in(http, server, control_db)
        async with http.get(f"{base}/recordings?status=kept") as r:
            assert "Retry upload" in await r.text()
        async with http.post(f"{base}/recordings/{recording_id}/retry", data={"csrf": csrf}) as r:
            assert r.status == 200 and "Upload queued" in await r.text()
    ((done, result),) = uploader.run_once()  # due now
    assert done == recording_id and result is not None
    with control_db.session(readonly=True) as s:
        row = RecordingStore().get(s, recording_id)
        assert row.status == "stored" and row.location.startswith(str(folder))
        location = row.location
    assert Path(location).read_bytes() == b"kept bytes " * 100
