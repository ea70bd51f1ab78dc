"""A participant whose media stops is noticed, told, reconnects, and stays in the recording.

The media is cut on the server's end of the participant's connection
(:mod:`recfw.testing.netcut`): ``media`` drops DTLS/RTP but still answers ICE
(the "no packets for mediaTimeout" case), ``all`` drops everything, so aioice's
consent checks expire (the "Consent to send expired" case of issue 9; the
consent interval is shortened so this takes about 2 s, not 30).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import aioice.ice
import av
import pytest
from recfw.config import parse_config
from recfw.media.layout import fit, grid
from recfw.rooms import Participant
from recfw.server.client import HeadlessParticipant
from recfw.server.liveness import CAUSE_CONSENT
from recfw.testing.media import has_reconnecting_label
from recfw.testing.netcut import cut_incoming

RED, BLUE = (220, 30, 30), (30, 30, 220)


def _config(media_timeout: float):
    return parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": "none",
                "destination": {"provider": "local", "bucket": "recordings", "fileFormat": "mkv"},
            },
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "iceAddresses": ["127.0.0.1"],
                "mediaTimeout": media_timeout,
            },
        },
        environ={},
    )


def _synthetic(plugins, pid: str, color):
    source = plugins.get("sources", "synthetic")
    options = {"width": 320, "height": 240, "fps": 15, "color": list(color)}
    return source.create(Participant(id=pid, display_name=pid), options)


async def _until(predicate, timeout: float = 60.0, what: str = "") -> None:
    """Wait for ``predicate`` (an upper bound only: a loaded machine may be slow)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        await asyncio.sleep(0.05)


async def _command(host: HeadlessParticipant, engine, kind: str, status: str) -> None:
    """Send ``kind`` and wait for the engine's ``status`` (finishing a file on a loaded
    machine may take longer than the client's 10 s wait for an answer)."""
    assert host._ws is not None
    await host._ws.send_json({"type": kind})
    await _until(lambda: engine.status == status, timeout=120, what=f"status {status}")


def _media_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "recfw.server.room"
    ]


def tile_states(path: Path, tiles: int = 2, size=(320, 240)) -> list[list[dict]]:
    """Per frame, per grid tile: mean RGB of the picture and whether the RECONNECTING
    label is drawn on it (a neutral dark band across its middle with white letters)."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            row = []
            for cell in grid(tiles, rgb.shape[1], rgb.shape[0]):
                r = fit(*size, cell)
                inner = rgb[r.y + 8 : r.y + r.h - 8, r.x + 8 : r.x + r.w - 8]
                row.append(
                    {
                        "rgb": tuple(float(c) for c in inner.reshape(-1, 3).mean(axis=0)),
                        "label": has_reconnecting_label(rgb, cell),
                    }
                )
            out.append(row)
    return out


def is_colour(colour, target, tolerance: float = 60) -> bool:
    return all(abs(c - t) < tolerance for c, t in zip(colour, target, strict=True))


async def test_media_that_stops_is_noticed_the_participant_reconnects_and_is_recorded(
    make_server, builtin_plugins, caplog
):
    caplog.set_level(logging.INFO)
    server = await make_server(config=_config(media_timeout=3))
    visitor_link, host_link = server.links("standup")
    seen_by_b: list[dict] = []
    async with (
        HeadlessParticipant(host_link, _synthetic(builtin_plugins, "a", RED), name="A") as a,
        HeadlessParticipant(
            visitor_link,
            _synthetic(builtin_plugins, "b", BLUE),
            name="B",
            tap_received=True,
            on_message=seen_by_b.append,
        ) as b,
    ):
        room = server.rooms["standup"]
        a_id = a.result.participant_id
        client_a = room.clients[a_id]
        await _command(a, room.engine, "start_recording", "started")
        session = room.engine.current_session
        await _until(lambda: session.status == "recording", what="the recording")
        await asyncio.sleep(2.0)  # A is recorded before the cut
        old_peer = client_a.peer
        assert old_peer is not None and old_peer.watch is not None
        cut = cut_incoming(old_peer.pc, "media")
        await _until(lambda: old_peer.watch.lost is not None, what="the server to notice")
        assert "no media packets" in old_peer.watch.lost  # ICE still answered: a stall
        await _until(
            lambda: (
                client_a.peer is not old_peer and client_a.peer.pc.connectionState == "connected"
            ),
            what="A's new connection",
        )
        await _until(lambda: a_id not in room.reconnecting, what="A's media to flow again")
        assert cut.dropped > 0
        # B's slot carries A's new connection now: frames keep arriving.
        (slot,) = [i for i, p in b.slots.items() if p and p["id"] == a_id]
        video_tap = b.received[slot][0]
        frames = video_tap.frames
        await _until(lambda: video_tap.frames > frames + 15, what="A's video at B again")
        await asyncio.sleep(2.0)  # A is recorded after the reconnection
        await _command(a, room.engine, "stop_recording", "stopped")
        await room.engine.wait_stored()
    # One warning, with the cause; A was told why and reconnected once, as the same person.
    # (on a starved machine B's media may really stall too: only A's warnings are counted)
    warnings = [w for w in _media_warnings(caplog) if a_id in w]
    assert len(warnings) == 1, warnings
    assert "no media packets for" in warnings[0], warnings
    assert a.result.reconnects == 1 and "no media packets" in a.result.media_lost[0]
    assert a.result.participant_id == a_id
    states = [m["state"] for m in seen_by_b if m["type"] == "peer_media" and m["id"] == a_id]
    assert states == ["reconnecting", "live"], states
    assert not [m for m in seen_by_b if m["type"] == "peer_left"]
    # The file: A's tile (the same place in the grid) before, marked while A was away,
    # and live again after.
    assert session.status == "stored", session.error
    frames = tile_states(Path(session.stored.location.removeprefix("file://")))
    first = [i for i in range(2) if is_colour(frames[len(frames) // 8][i]["rgb"], RED)]
    assert first, frames[len(frames) // 8]
    (a_tile,) = first
    marked = [n for n, row in enumerate(frames) if row[a_tile]["label"]]
    assert marked, "no frame shows A's tile as reconnecting"
    assert not any(row[1 - a_tile]["label"] for row in frames), "B's tile was marked"
    before = frames[: marked[0]]
    after = frames[marked[-1] + 1 :]
    assert sum(is_colour(r[a_tile]["rgb"], RED) for r in before) >= 15, len(before)
    assert sum(is_colour(r[a_tile]["rgb"], RED) for r in after) >= 15, len(after)
    # B's tile showed B throughout (it has no label; B's picture, whatever the load).
    assert sum(is_colour(r[1 - a_tile]["rgb"], BLUE) for r in frames) >= len(frames) // 2, [
        r[1 - a_tile]["rgb"] for r in frames[::10]
    ]


@pytest.mark.parametrize(
    ("cut", "cause"),
    [("all", CAUSE_CONSENT), ("dtls", "the DTLS transport closed")],
    ids=["consent-expires", "transport-closes"],
)
async def test_a_transport_that_goes_away_is_noticed_with_its_cause(
    make_server, builtin_plugins, monkeypatch, caplog, cut, cause
):
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.3)
    server = await make_server(config=_config(media_timeout=60))
    visitor_link, host_link = server.links("standup")
    async with (
        HeadlessParticipant(host_link, _synthetic(builtin_plugins, "a", RED), name="A") as a,
        HeadlessParticipant(visitor_link, _synthetic(builtin_plugins, "b", BLUE), name="B"),
    ):
        room = server.rooms["standup"]
        a_id = a.result.participant_id
        client_a = room.clients[a_id]
        old_peer = client_a.peer
        await _until(lambda: a_id not in room.reconnecting and old_peer.watch.flowing)
        if cut == "all":
            cut_incoming(old_peer.pc, "all")
        else:  # the server's DTLS transport of A's connection closes
            await old_peer.pc.getTransceivers()[0].receiver.transport.stop()
        await _until(lambda: old_peer.watch.lost is not None, what="the loss")
        assert old_peer.watch.lost == cause
        await _until(
            lambda: client_a.peer is not old_peer and client_a.peer.watch.flowing,
            what="A's media over a new connection",
        )
        await _until(lambda: a_id not in room.reconnecting)
    warnings = [w for w in _media_warnings(caplog) if a_id in w]
    assert len(warnings) == 1 and cause in warnings[0], warnings
    assert a.result.media_lost == [cause]


async def test_a_second_offer_that_cannot_be_used_leaves_the_connection_as_it_was(
    make_server, builtin_plugins
):
    server = await make_server(config=_config(media_timeout=60))
    visitor_link, _ = server.links("standup")
    errors: list[dict] = []
    async with HeadlessParticipant(
        visitor_link,
        _synthetic(builtin_plugins, "a", RED),
        name="A",
        on_message=lambda m: errors.append(m) if m["type"] == "error" else None,
    ) as a:
        client = server.rooms["standup"].clients[a.result.participant_id]
        peer = client.peer
        assert a._ws is not None
        bad = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"  # no ICE credentials
        await a._ws.send_json({"type": "offer", "sdp": bad, "reason": "test"})
        await _until(lambda: errors, what="the error")
        assert errors[0]["command"] == "offer"
        assert errors[0]["message"].startswith("offer: "), errors
        assert client.peer is peer and peer.pc.connectionState == "connected"
        assert client.id not in server.rooms["standup"].reconnecting
        assert peer.watch is not None and not peer.watch.stopped
