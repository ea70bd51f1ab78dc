"""Failures inside a recording never leave the room stuck, and never lose the file."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import av
import recfw.session
from recfw import hookimpl
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
    await engine.wait_started()
    assert engine.status == "started"
    await engine.close()
    assert engine.sessions[-1].status == "stored"


async def test_a_spool_folder_that_cannot_be_made_is_a_clear_failure(plugins, events, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = settings_for(plugins, tmp_path)
    engine = make_engine(plugins, settings, tmp_path, spool_dir=blocker / "spool")
    await engine.join(HOST)
    await engine.wait_started()
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
    await engine.wait_started()
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
    await engine.wait_started()
    assert_room_free(engine)
    assert engine.sessions[0].status == "failed"
    assert "crf" in engine.sessions[0].error
    assert list((tmp_path / "spool").glob("*")) == []
    await engine.close()


class FailingMkv:
    """The built-in mkv encoder, except that its stream dies after ``frames`` pictures."""

    name = "failing-mkv"
    extension = "mkv"
    content_type = "video/x-matroska"

    def __init__(self, inner, frames: int):
        self.inner = inner
        self.frames = frames

    def open(self, output, fmt, options):
        stream = self.inner.open(output, fmt, options)
        budget = [self.frames]

        class Stream:
            def write_video(self, frame):
                budget[0] -= 1
                if budget[0] < 0:
                    raise OSError("the encoder died")
                stream.write_video(frame)

            def write_audio(self, frame):
                stream.write_audio(frame)

            def close(self):
                stream.close()

        return Stream()


class FailingEncoderPlugin:
    def __init__(self, encoder):
        self.encoder = encoder

    @hookimpl
    def recfw_register_encoders(self, register):
        register(self.encoder)


async def test_an_encoder_dying_mid_recording_stops_it_at_once(plugins, events, tmp_path):
    plugins.register(FailingEncoderPlugin(FailingMkv(plugins.get("encoders", "mkv"), 20)), "bad")
    settings = settings_for(
        plugins,
        tmp_path,
        destination={
            "provider": "local",
            "bucket": str(tmp_path / "out"),
            "fileFormat": "failing-mkv",
        },
    )
    engine = make_engine(plugins, settings, tmp_path)
    await engine.join(HOST)
    await engine.wait_started()
    assert engine.status == "started"
    for _ in range(100):  # 20 frames are 0.7 s of a live recording
        await asyncio.sleep(0.1)
        if engine.status == "stopped":
            break
    await engine.wait_stored()
    assert_room_free(engine)
    [session] = engine.sessions
    assert session.status == "failed" and "the encoder died" in session.error
    kept = Path(session.kept_at)
    with av.open(str(kept)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 0
    assert "recording.failed" in events.types()
    await engine.join(GUEST)  # people are still here: no automatic retry into the same failure
    assert len(engine.sessions) == 1
    await engine.close()
