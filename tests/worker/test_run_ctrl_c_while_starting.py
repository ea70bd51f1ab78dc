"""Ctrl-C of ``recfw run`` while its recorder process is still joining: a clean stop.

A real ``recfw run`` subprocess starts a real recorder process for the first person's
join; the test freezes that process with SIGSTOP as soon as it exists (long before it
can have joined: it is still importing), so "the recording is starting" holds however
fast or slow the machine is. Then SIGINT, and once the server has hung up on the
person, SIGCONT: the recorder joins the closing room, records, is stopped at once,
and its short file is stored. ``recfw run`` exits 0, nothing is left in the spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3

from recfw.manager import load_plugins
from recfw.server.client import HeadlessParticipant
from recfw.server.ice import unrestrict_host_addresses
from recfw.testing.processes import local_run_config, run_one_room, stored_recording

from .conftest import RED, synthetic
from .test_run_supervises import _workers_of


async def _freeze_first_worker(pid: int) -> int:
    """SIGSTOP the first ``recfw worker`` child of ``pid`` as soon as it appears."""
    for _ in range(12000):  # 2 minutes at most, however loaded the machine
        for worker in _workers_of(pid):
            os.kill(worker, signal.SIGSTOP)
            return worker
        await asyncio.sleep(0.01)
    raise AssertionError("recfw run started no recorder process")


async def _lines(stream, sink: list[str]) -> None:
    while line := await stream.readline():
        sink.append(line.decode())


async def _until_line(sink: list[str], text: str, what: str) -> None:
    for _ in range(1200):  # 2 minutes at most
        if any(text in line for line in sink):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {what}: {''.join(sink)[-3000:]}")


async def test_ctrl_c_while_the_recorder_starts_stores_a_short_file_and_exits_0(tmp_path):
    (tmp_path / "recfw.toml").write_text(local_run_config("automatic"))
    proc = await run_one_room(tmp_path, "--log-level", "info")
    out: list[str] = []
    err: list[str] = []
    readers = [
        asyncio.ensure_future(_lines(proc.stdout, out)),
        asyncio.ensure_future(_lines(proc.stderr, err)),
    ]
    worker: int | None = None
    try:
        await _until_line(out, "visitor link:", "links from recfw run")
        url = next(line for line in out if "visitor link:" in line).split(": ", 1)[1].strip()
        freezing = asyncio.ensure_future(_freeze_first_worker(proc.pid))
        a = HeadlessParticipant(url, synthetic(load_plugins(), "a", RED), name="A")
        try:
            await a.connect(timeout=60)  # A's join starts the recording (automatic)
            worker = await freezing
            assert a.result.statuses[-1:] == ["starting"], a.result.statuses
            proc.send_signal(signal.SIGINT)  # Ctrl-C while the recorder is starting
            await _until_line(out, "stopping:", "shutdown message")
            # The server hangs up on the person before it waits for the recording.
            assert a._reader is not None
            await asyncio.wait_for(asyncio.shield(a._reader), 60)
        finally:
            freezing.cancel()
            await a.close()
        os.kill(worker, signal.SIGCONT)  # the recorder joins the closing room now
        await asyncio.wait_for(proc.wait(), 180)
    finally:
        unrestrict_host_addresses()
        if worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGCONT)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await asyncio.gather(*readers, return_exceptions=True)
    logs = "".join(out) + "".join(err)
    assert proc.returncode == 0, logs[-4000:]
    assert "not a valid recorder token" not in logs, logs[-4000:]
    assert "recording failed" not in logs, logs[-4000:]
    # The start was in progress when the stop came: it was stopped once it recorded.
    assert "stopping the recording that just started" in logs, logs[-4000:]
    assert not _workers_of(proc.pid)
    stored, frames = stored_recording(out, tmp_path / "recordings")
    assert frames >= 1
    location = stored.removeprefix("stored ").removesuffix(" (room standup)")
    # Nothing left behind in the spool; the recording's row says it is stored, and
    # the outbox holds recording.finished and no failure.
    spool = tmp_path / ".recfw" / "spool"
    assert not [p for p in spool.rglob("*") if p.is_file()], list(spool.rglob("*"))
    with sqlite3.connect(tmp_path / ".recfw" / "recfw.db") as db:
        rows = db.execute("SELECT status, location FROM recordings").fetchall()
        events = [json.loads(p) for (p,) in db.execute("SELECT payload FROM outbox_events")]
    assert rows == [("stored", location)], rows
    types = [e["type"] for e in events]
    assert "recording.finished" in types and "recording.failed" not in types, types
    # The recorder's joined and left mark the recording's start and stop.
    recorder = [e["type"] for e in events if e["data"].get("roleName") == "recorder"]
    assert recorder == ["room.client.joined", "room.client.left"], types
