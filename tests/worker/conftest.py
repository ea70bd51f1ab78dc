"""Fixtures for recorder-process tests: a room server that records in ``recfw worker`` processes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from recfw.config import parse_config
from recfw.control.crypto import Cipher, new_key
from recfw.control.db import Database
from recfw.control.events import ControlEvents
from recfw.media.layout import fit, grid
from recfw.rooms import Participant
from recfw.server import RoomServer
from recfw.server.ice import unrestrict_host_addresses

HOST_SECRET = "worker-test-host-secret"
RED, BLUE = (220, 30, 30), (30, 30, 220)


def worker_config(trigger: str, folder: Path, **server):
    return parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": trigger,
                "destination": {"provider": "local", "bucket": str(folder), "fileFormat": "mkv"},
            },
            "server": {"host": "127.0.0.1", "port": 0, "iceAddresses": ["127.0.0.1"], **server},
        },
        environ={},
    )


def synthetic(plugins, pid: str, color):
    source = plugins.get("sources", "synthetic")
    options = {"width": 320, "height": 240, "fps": 15, "color": list(color)}
    return source.create(Participant(id=pid, display_name=pid), options)


def tile_colours(
    path: Path, tiles: int = 2, *, first: bool = False
) -> list[tuple[float, float, float]]:
    """Mean RGB of each grid tile over the middle third of the file (must be 1280x720),
    or (``first``) in its very first picture."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1280, 720)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    middle = frames[:1] if first else frames[len(frames) // 3 : 2 * len(frames) // 3]
    colours = []
    for cell in grid(tiles, 1280, 720):
        r = fit(320, 240, cell)
        region = np.stack([f[r.y + 8 : r.y + r.h - 8, r.x + 8 : r.x + r.w - 8] for f in middle])
        colours.append(tuple(float(c) for c in region.reshape(-1, 3).mean(axis=0)))
    return colours


def is_colour(colour, target) -> bool:
    return all(abs(c - t) < 60 for c, t in zip(colour, target, strict=True))


def decoded_seconds(path: Path) -> tuple[float, float]:
    """(video seconds, audio seconds) that decode from ``path`` (a cut file too)."""
    video = audio = 0.0
    try:
        container = av.open(str(path))
    except av.error.FFmpegError:  # killed before the header was written
        return video, audio
    with container:
        for packet in container.demux():
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue
            for frame in frames:
                if frame.time is None:
                    continue
                if packet.stream.type == "video":
                    video = max(video, frame.time + 1 / 30)
                elif packet.stream.type == "audio":
                    audio = max(audio, frame.time + frame.samples / frame.sample_rate)
    return video, audio


@contextlib.asynccontextmanager
async def room_servers(plugins, tmp_path: Path, config_of: Callable[..., Any]):
    """``make(*args, **kwargs)`` -> a started :class:`RoomServer` on ``config_of(*args,
    **kwargs)`` that records in recorder processes, with a real SQLite control plane
    (``server.control``); every server made is closed at the end."""
    servers: list[RoomServer] = []
    dbs: list[Database] = []

    async def make(*args: Any, **kwargs: Any) -> RoomServer:
        db = Database(
            f"sqlite:///{tmp_path}/recfw.db", Cipher([new_key().encode()], "test"), source="test"
        )
        db.upgrade()
        dbs.append(db)
        server = RoomServer(
            config_of(*args, **kwargs),
            plugins,
            host_secret=HOST_SECRET,
            spool_dir=tmp_path / "spool",
            db=db,
            control=ControlEvents(db),
            supervise=True,
        )
        await server.start()
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            await server.close()
        for db in dbs:
            db.dispose()
        unrestrict_host_addresses()


@pytest.fixture
async def supervised_server(builtin_plugins, tmp_path, monkeypatch):
    """``await supervised_server(trigger)`` -> a started :class:`RoomServer` that records
    in recorder processes, with a real SQLite control plane (``server.control``);
    keyword arguments are ``[server]`` settings (e.g. ``mediaTimeout=2``)."""
    monkeypatch.chdir(tmp_path)

    def config_of(trigger: str = "none", **server_settings: Any) -> Any:
        return worker_config(trigger, Path("recordings"), **server_settings)

    async with room_servers(builtin_plugins, tmp_path, config_of) as make:
        yield make
