"""``recfw run`` as a subprocess, for end-to-end tests."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

RECFW = str(Path(sys.executable).parent / "recfw")


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
