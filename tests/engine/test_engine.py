"""The room engine end to end: trigger -> recording session -> file in storage -> events.

Real parts: the built-in synthetic source, compositor, encoder and local sink;
files are checked by decoding them.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import av
import pytest
from recfw.config import Config
from recfw.engine import RoomEngine
from recfw.rooms import Participant, Role
from recfw.settings import EMBEDDED_DEFAULT, Destination, effective, merge, parse_recording
from recfw.triggers import Action

HOST = Participant("h1", "Hanna", Role.HOST)
GUEST = Participant("v1", "Viktor", Role.VISITOR)


def settings_for(plugins, tmp_path: Path, **override):
    rest = {
        "type": "local",
        "destination": {"provider": "local", "bucket": str(tmp_path / "out"), "fileFormat": "mkv"},
        "startTrigger": "automatic",
    }
    rest.update(override)
    return effective(EMBEDDED_DEFAULT, parse_recording(rest), plugins, environ={})


def make_engine(plugins, settings, tmp_path, **kwargs):
    source = plugins.get("sources", "synthetic")
    kwargs.setdefault("spool_dir", tmp_path / "spool")
    return RoomEngine(
        "standup",
        settings,
        Config(recording=settings),
        plugins,
        media_for=lambda p: source.create(p, {}),
        **kwargs,
    )


def decode(path: Path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        return video.codec_context.width, video.codec_context.height, frames


def brightness(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]


async def test_automatic_records_and_stores_with_events(plugins, events, tmp_path):
    settings = settings_for(plugins, tmp_path)
    engine = make_engine(plugins, settings, tmp_path)
    await engine.join(HOST)
    assert engine.status == "starting"  # the room is not held while the recorder starts
    await engine.wait_started()
    assert engine.status == "started"
    await engine.join(GUEST)
    await asyncio.sleep(1.5)
    await engine.leave(GUEST.id)
    await engine.leave(HOST.id)
    assert engine.status == "stopped"
    await engine.wait_stored()

    [session] = engine.sessions
    assert session.status == "stored", session.error
    stored = Path(session.stored.location.removeprefix("file://"))
    assert stored.parent == tmp_path / "out"
    assert stored.name.startswith("standup-") and stored.name.endswith("Z.mkv")
    width, height, frames = decode(stored)
    assert (width, height) == (1280, 720)
    assert frames >= 30  # at least a second of 30 fps video
    # People are in the picture up to the moment they leave: the live output runs
    # a little behind the clock, and leaving must not blank the frames still to come.
    assert min(brightness(stored)[-15:]) > 20
    assert not list((tmp_path / "spool").iterdir()), "spool copy removed after the store"

    types = events.types()
    recorder_events = [
        e
        for e in events.events
        if e["type"].startswith("room.client.") and e["data"]["roleName"] == "recorder"
    ]
    assert [e["type"] for e in recorder_events] == ["room.client.joined", "room.client.left"]
    assert types.index("recording.started") < types.index("recording.finished")
    finished = events.events[types.index("recording.finished")]
    assert finished["apiVersion"] == "1.0"
    assert finished["data"]["fileName"] == stored.name
    assert finished["data"]["size"] == stored.stat().st_size
    joined_people = [
        e
        for e in events.events
        if e["type"] == "room.client.joined" and e["data"]["roleName"] != "recorder"
    ]
    assert [e["data"]["participantId"] for e in joined_people] == ["h1", "v1"]


async def test_manual_trigger_refuses_visitor_and_obeys_host(plugins, tmp_path):
    settings = settings_for(plugins, tmp_path, startTrigger="none")
    engine = make_engine(plugins, settings, tmp_path)
    await engine.join(HOST)
    await engine.join(GUEST)
    assert engine.status == "idle"
    refused = await engine.start_command(GUEST.id)
    assert refused.action == Action.REFUSE and "host" in refused.reason
    assert engine.status == "idle" and not engine.sessions
    assert (await engine.start_command(HOST.id)).action == Action.START
    await engine.wait_started()
    assert (await engine.stop_command(GUEST.id)).action == Action.REFUSE
    assert engine.status == "started"
    assert (await engine.stop_command(HOST.id)).action == Action.STOP
    await engine.close()
    assert [s.status for s in engine.sessions] == ["stored"]


async def test_maximum_duration_stops_and_does_not_restart(plugins, tmp_path):
    # Bounds from what the test observes (any machine speed): the engine's clock
    # when the recording started and when it began to stop, and the recorder's own.
    seen: list[tuple[str, float, float | None]] = []

    def changed(engine):
        seen.append((engine.status, engine._now(), engine.state.recording_since))

    settings = settings_for(plugins, tmp_path, maxDuration=1.0)
    engine = make_engine(plugins, settings, tmp_path, on_change=changed)
    await engine.join(HOST)
    await engine.wait_started()
    [session] = engine.sessions
    recorder = session._recorder
    for _ in range(6000):  # (at most a minute, however slow the machine)
        if engine.status == "stopped":
            break
        await asyncio.sleep(0.01)
    assert engine.status == "stopped"
    await engine.join(GUEST)  # people still there: no automatic restart
    assert len(engine.sessions) == 1
    await engine.close()
    assert session.status == "stored"
    since = next(s for status, _, s in seen if status == "started")
    stopping = next(t for status, t, _ in seen if status == "stopping")
    stopped = next(t for status, t, _ in seen if status == "stopped")
    assert since is not None and stopping >= since + 1.0  # not before the maximum
    # The file holds what the recorder made until it was told to stop (its clock
    # started when its encoder was open, after `since`), no more: never longer
    # than the maximum plus however late the stop came.
    loop_t0 = asyncio.get_running_loop().time() - engine._now()
    started = recorder._t0 - loop_t0  # the recorder's clock is the loop's (time.monotonic)
    frame = 1 / 30
    assert stopping - started - frame <= session.duration_s <= stopped - started + frame
    assert session.duration_s <= stopped - since + frame


async def test_type_none_never_records(plugins, tmp_path):
    settings = settings_for(plugins, tmp_path, type="none")
    engine = make_engine(plugins, settings, tmp_path)
    await engine.join(HOST)
    await engine.close()
    assert engine.sessions == []


async def test_failed_store_keeps_the_local_file(plugins, events, tmp_path, monkeypatch):
    settings = settings_for(plugins, tmp_path)
    # A destination whose folder cannot be created: a file stands where it should be.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    dest = replace(settings.destination, bucket=str(blocker / "sub"))
    settings = merge(settings, replace(settings, destination=dest))
    engine = make_engine(plugins, settings, tmp_path)
    await engine.join(HOST)
    await asyncio.sleep(0.5)
    await engine.close()
    [session] = engine.sessions
    assert session.status == "failed"
    kept = Path(session.kept_at)
    assert kept.exists() and kept.stat().st_size > 0
    assert str(kept) in session.error  # the message says where the file is
    assert kept.is_absolute()
    failed = [e for e in events.events if e["type"] == "recording.failed"]
    assert failed and failed[0]["data"]["keptAt"] == str(kept)
    _, _, frames = decode(kept)
    assert frames > 0


def test_embedded_default_is_a_local_folder(plugins):
    settings = effective(EMBEDDED_DEFAULT, None, plugins, environ={})
    assert settings.type == "local"
    expected = Destination(provider="local", bucket="recordings", file_format="mkv")
    assert settings.destination == expected


@pytest.mark.parametrize("started", [False, True], ids=["while-starting", "while-recording"])
async def test_closing_the_room_stores_the_recording_and_the_recorder_leaves(
    plugins, events, tmp_path, started
):
    settings = settings_for(plugins, tmp_path)
    engine = make_engine(plugins, settings, tmp_path)
    await engine.join(HOST)
    if started:
        await engine.wait_started()
    await engine.close()  # (recfw run's Ctrl-C, a meeting that ended)
    [session] = engine.sessions
    assert session.status == "stored", session.error
    assert engine.status == "stopped"
    recorder_events = [
        e["type"]
        for e in events.events
        if e["type"].startswith("room.client.") and e["data"]["roleName"] == "recorder"
    ]
    assert recorder_events == ["room.client.joined", "room.client.left"]
    types = events.types()
    assert types.index("recording.started") < types.index("recording.finished")
    assert "recording.failed" not in types
