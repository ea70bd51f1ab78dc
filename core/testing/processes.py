"""``recfw run`` as a subprocess, for end-to-end tests."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

RECFW = str(Path(sys.executable).parent / "recfw")


def local_run_config(trigger: str = "automatic", *server: str, more: str = "") -> str:
    """A ``recfw.toml`` for a ``recfw run`` under test: ``startTrigger = trigger``,
    recordings as MKV into the local folder ``recordings``, the room server and its
    media on 127.0.0.1 at a free port. Each of ``server`` is one more ``[server]``
    line; ``more`` (other tables) is appended as it is."""
    lines = "".join(f"{line}\n" for line in server)
    return f"""
[recording]
type = "local"
startTrigger = "{trigger}"

[recording.destination]
provider = "local"
bucket = "recordings"
fileFormat = "mkv"

[server]
host = "127.0.0.1"
port = 0
iceAddresses = ["127.0.0.1"]
{lines}{more}"""


async def run_one_room(cwd: Path, *args: str, room: str = "standup") -> asyncio.subprocess.Process:
    """Start ``recfw run --config recfw.toml --room ROOM [ARGS]`` in ``cwd``, with its
    output (links on stdout, the log on stderr) piped to the caller."""
    return await asyncio.create_subprocess_exec(
        RECFW,
        "run",
        "--config",
        "recfw.toml",
        "--room",
        room,
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def start_run(
    cwd: Path, env: dict[str, str], config: str = "recfw.toml"
) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``recfw run --config CONFIG`` in ``cwd``; return it and the base URL it serves."""
    proc = await asyncio.create_subprocess_exec(
        RECFW,
        "run",
        "--config",
        config,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, "recfw run ended before it served"
        if line.startswith("recfw room server on "):
            return proc, line.strip().removeprefix("recfw room server on ")


async def drain(proc: asyncio.subprocess.Process, sink: list[str]) -> None:
    """Read ``proc``'s output into ``sink`` until it ends (a full pipe would block it)."""
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        sink.append(line.decode())
