"""Failures inside a recording never leave the room stuck, and never lose the file."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import recfw.session
from recfw.config import Config

from .test_engine import GUEST, HOST, make_engine, settings_for


def assert_room_free(engine):
    """The recorder left, no session claims to run, the status says stopped."""
    assert engine.status == "stopped"
    assert engine.current_session is None
    assert [p.id for p in engine.state.participants if not p.is_person] == []
    assert not engine.state.recording


async def test_disk_full_while_finishing_keeps_the_file_and_frees_the_room(
    plugins, events, tmp_path, monkeypatch
):
    engine = make_engine(plugins, settings_for(plugins, tmp_path), tmp_path)
    await engine.join(HOST)
    await asyncio.sleep(0.5)

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recfw.session.os, "fsync", disk_full)
    await engine.leave(HOST.id)
    await engine.wait_stored()
    assert_room_free(engine)
    [session] = engine.sessions
    assert session.status == "failed"
    assert "No space left on device" in session.error
    assert Path(session.kept_at).exists()
    failed = [e for e in events.events if e["type"] == "recording.failed"]
    assert failed[0]["data"]["keptAt"] == session.kept_at
    # The room records again afterwards.
    monkeypatch.undo()
    await engine.join(GUEST)
    assert engine.status == "started"
    await engine.close()
    assert engine.sessions[-1].status == "stored"


async def test_a_spool_folder_that_cannot_be_made_is_a_clear_failure(plugins, events, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = settings_for(plugins, tmp_path)
    source = plugins.get("sources", "synthetic")
    from recfw.engine import RoomEngine

    engine = RoomEngine(
        "standup",
        settings,
        Config(recording=settings),
        plugins,
        media_for=lambda p: source.create(p, {}),
        spool_dir=blocker / "spool",
    )
    await engine.join(HOST)
    assert_room_free(engine)
    [session] = engine.sessions
    assert session.status == "failed" and "could not start recording" in session.error
    assert "recording.failed" in events.types()
    await engine.close()


async def test_a_broken_source_never_takes_the_room_down(plugins, tmp_path):
    settings = settings_for(plugins, tmp_path)

    def broken(participant):
        raise RuntimeError("camera plugin exploded")

    engine = make_engine(plugins, settings, tmp_path)
    engine.media_for = broken
    await engine.join(HOST)  # starts with nobody's media
    assert engine.status == "started"
    await engine.join(GUEST)  # a join mid-recording does not raise either
    await asyncio.sleep(0.3)
    await engine.leave(GUEST.id)
    await engine.leave(HOST.id)
    await engine.wait_stored()
    assert_room_free(engine)
    assert engine.sessions[0].status == "stored"


async def test_a_recording_that_cannot_start_leaves_no_empty_file(plugins, tmp_path):
    settings = settings_for(plugins, tmp_path)
    engine = make_engine(plugins, settings, tmp_path)
    engine.config = Config(recording=settings, encoder={"crf": "abc"})
    await engine.join(HOST)
    assert_room_free(engine)
    assert engine.sessions[0].status == "failed"
    assert "crf" in engine.sessions[0].error
    assert list((tmp_path / "spool").glob("*")) == []
    await engine.close()
