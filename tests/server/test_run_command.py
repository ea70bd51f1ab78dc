"""``recfw run`` as a subprocess: links, a synthetic host over WebRTC, stored files reported."""

from __future__ import annotations

import asyncio
import signal

from recfw.manager import load_plugins
from recfw.rooms import Participant
from recfw.server.client import HeadlessParticipant
from recfw.server.ice import unrestrict_host_addresses
from recfw.testing.processes import RECFW, local_run_config, run_one_room, stored_recording

CONFIG = local_run_config("none")


async def _read_links(stream) -> dict[str, str]:
    links: dict[str, str] = {}
    while "host link" not in links:
        line = (await asyncio.wait_for(stream.readline(), 20)).decode()
        assert line, "recfw run ended before printing the links"
        if ":" in line and "link" in line:
            label, url = line.strip().split(": ", 1)
            links[label.strip()] = url.strip()
    return links


async def test_run_serves_rooms_records_and_stores_on_ctrl_c(tmp_path):
    (tmp_path / "recfw.toml").write_text(CONFIG)
    proc = await run_one_room(tmp_path)
    try:
        links = await _read_links(proc.stdout)
        assert links["visitor link"].endswith("/standup")
        assert "?roomKey=" in links["host link"]
        source = load_plugins().get("sources", "synthetic")
        media = source.create(Participant(id="synthetic-host", display_name="Syn"), {})
        async with HeadlessParticipant(links["host link"], media, name="Syn") as host:
            assert host.result.role == "host"
            # A first recording, stopped by the host: recfw run says where it went.
            await host.command("start_recording")
            await asyncio.sleep(2)
            await host.command("stop_recording")
            line = ""
            while not line.startswith("stored "):
                line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
                assert line, "recfw run ended without reporting the stored file"
            first = line.strip()
            # A second one, still running when recfw run gets Ctrl-C: it is stored too.
            await host.command("start_recording")
            assert host.result.statuses[-1] in ("starting", "started")
            # The answer comes while the recorder process starts: wait until it records.
            deadline = asyncio.get_running_loop().time() + 120
            while host.result.statuses[-1] != "started":
                assert asyncio.get_running_loop().time() < deadline, host.result.statuses
                await asyncio.sleep(0.1)
            await asyncio.sleep(3)
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), 30)
    finally:
        unrestrict_host_addresses()
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    stored, frames = stored_recording(out.decode().splitlines(), tmp_path / "recordings")
    assert stored != first and first.endswith(" (room standup)")
    assert frames >= 2 * 30, frames  # about 3 s at 30 fps were recorded


async def test_run_rejects_a_bad_config_naming_the_field(tmp_path):
    (tmp_path / "bad.toml").write_text('[server]\nport = "eighty"\n')
    proc = await asyncio.create_subprocess_exec(
        RECFW,
        "run",
        "--config",
        str(tmp_path / "bad.toml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 3
    assert "server.port" in err.decode()
