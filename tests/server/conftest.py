"""Fixtures for the room server tests: a real server on 127.0.0.1, any free port."""

from __future__ import annotations

from pathlib import Path

import pytest
from recfw.config import parse_config
from recfw.server import RoomServer
from recfw.server.ice import unrestrict_host_addresses

HOST_SECRET = "test-host-secret"


def room_config(trigger: str, folder: Path, **recording):
    return parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": trigger,
                "destination": {"provider": "local", "bucket": str(folder), "fileFormat": "mkv"},
                **recording,
            },
            "server": {"host": "127.0.0.1", "port": 0, "iceAddresses": ["127.0.0.1"]},
        },
        environ={},
    )


@pytest.fixture
async def make_server(builtin_plugins, tmp_path, monkeypatch):
    """``await make_server(trigger)`` -> a started :class:`RoomServer` (closed after the test).

    Recordings go to the local folder ``recordings`` in the test's temporary
    directory (the working directory during the test).
    """
    servers: list[RoomServer] = []
    monkeypatch.chdir(tmp_path)

    async def make(trigger: str = "none", config=None) -> RoomServer:
        config = config or room_config(trigger, Path("recordings"))
        server = RoomServer(
            config, builtin_plugins, host_secret=HOST_SECRET, spool_dir=tmp_path / "spool"
        )
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()
    unrestrict_host_addresses()
