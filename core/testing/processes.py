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


def stored_recording(output: list[str], folder: Path, room: str = "standup") -> tuple[str, int]:
    """The one ``stored <location> (room ROOM)`` line of a ``recfw run``'s ``output``:
    checks that it is a 1280x720 file of ``room`` in the local ``folder`` and decodes
    it; returns the line and how many video frames decoded."""
    import av

    (stored,) = [line.strip() for line in output if line.startswith("stored ")]
    assert stored.endswith(f" (room {room})"), stored
    location = stored.removeprefix("stored ").removesuffix(f" (room {room})")
    path = Path(location.removeprefix("file://"))
    assert path.parent == folder and path.name.startswith(f"{room}-"), path
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.width, video.height) == (1280, 720)
        return stored, sum(1 for _ in container.decode(video))


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
