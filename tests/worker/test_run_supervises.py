"""``recfw run`` (a subprocess) records through a ``recfw worker`` process it starts itself."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from recfw.manager import load_plugins
from recfw.server.client import HeadlessParticipant
from recfw.server.ice import unrestrict_host_addresses
from recfw.testing.processes import local_run_config, run_one_room

from .conftest import BLUE, RED, is_colour, synthetic, tile_colours

CONFIG = local_run_config("automatic-2nd-participant")


def _workers_of(pid: int) -> list[int]:
    """The ``recfw worker`` processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"recfw.worker" in cmdline:
            found.append(int(entry.name))
    return found


async def test_run_records_in_a_worker_process_with_a_tile_per_person(tmp_path):
    (tmp_path / "recfw.toml").write_text(CONFIG)
    proc = await run_one_room(tmp_path)
    plugins = load_plugins()
    workers: list[int] = []
    try:
        links: dict[str, str] = {}
        while "visitor link" not in links:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "recfw run ended before printing the links"
            if "link:" in line:
                label, url = line.strip().split(": ", 1)
                links[label.strip()] = url.strip()
        url = links["visitor link"]
        async with (
            HeadlessParticipant(url, synthetic(plugins, "a", RED), name="A") as a,
            HeadlessParticipant(url, synthetic(plugins, "b", BLUE), name="B"),
        ):
            for _ in range(1200):  # the recorder process joins (at most 2 min when loaded)
                if a.result.statuses[-1:] == ["started"]:
                    break
                await asyncio.sleep(0.1)
            assert a.result.statuses[-1:] == ["started"], a.result.statuses
            workers = _workers_of(proc.pid)
            assert len(workers) == 1, workers  # one recorder process, started by recfw run
            assert all(p.get("role") != "recorder" for p in a.slots.values() if p), a.slots
            await asyncio.sleep(3.0)
        # Everyone left: the recording stops, the worker finishes the file, it is stored.
        line = ""
        while not line.startswith("stored "):
            line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
            assert line, "recfw run ended without reporting the stored file"
    finally:
        unrestrict_host_addresses()
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert not _workers_of(proc.pid)
    location = line.strip().removeprefix("stored ").removesuffix(" (room standup)")
    colours = tile_colours(Path(location.removeprefix("file://")), 2)
    assert any(is_colour(c, RED) for c in colours) and any(is_colour(c, BLUE) for c in colours), (
        colours
    )
