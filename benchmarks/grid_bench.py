"""The active grid's cost: recording a large room with and without tiles for everyone.

A room server runs in a child process and records in that process (the
recorder reads the publishers' tapped frames directly, no forwarding hop).
PEOPLE synthetic participants (:mod:`recfw.testing.synthetic`: pre-encoded,
textured VP8 at about a camera's bitrate, and Opus) join a group room from this
process, a host starts the recording, and after a warm-up the server process's
CPU time (user + system, all threads, /proc/<pid>/stat) is sampled over SECONDS,
with the video frames the recorder decoded in that time and the process's peak
memory (VmHWM). Three runs, side by side:

* **active grid** (``maxTiles`` 16): 15 tiles + "+K more"; the video of people
  without a tile is paused: not decoded, not scaled (this tree's default).
* **decode hidden**: the same grid, but the recorder's video tracks ignore
  ``pause()`` (patched in the child for this run only), so everyone's video
  is decoded and only the 15 shown are scaled: what pausing saves.
* **everyone** (``maxTiles`` 49): a tile for each of the PEOPLE (5x5 for 25):
  what a composite that shows everyone costs.

Run::

    .venv/bin/python benchmarks/grid_bench.py [--people 25] [--seconds 20]
        [--size 640x360@15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = r"""
import asyncio, json, sys
from recfw.config import parse_config
from recfw.manager import load_plugins
from recfw.server import RoomServer
from recfw.server.aiortc_tap import STATS
from recfw.server.ice import restrict_host_addresses
from recfw.server.room import Room

max_tiles, fps, folder, no_pause = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
if no_pause == "1":
    from recfw.server.forward import DecodedTrack
    DecodedTrack.pause = lambda self: None

async def main():
    config = parse_config({
        "recording": {"type": "local", "startTrigger": "none",
                      "destination": {"provider": "local", "bucket": folder}},
        "server": {"host": "127.0.0.1", "port": 0, "iceAddresses": ["127.0.0.1"],
                   "maxPeople": 50, "videoFps": fps, "maxTiles": max_tiles}}, environ={})
    plugins = load_plugins()
    server = RoomServer(config, plugins, host_secret="bench", spool_dir=folder + "/spool")
    await server.start()
    restrict_host_addresses(["127.0.0.1"])
    server.rooms["big"] = Room("big", server.settings, config, plugins, loopback_only=True,
                               mode="group")
    print(json.dumps(server.links("big")), flush=True)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        room = server.rooms["big"]
        session = room.engine.current_session
        recorder = getattr(session, "_recorder", None)
        print(json.dumps({
            "decoded": STATS.frames_decoded.get("video", 0),
            "shown": len(recorder.shown) if recorder else 0,
            "behind": recorder.max_behind if recorder else 0.0,
            "dropped": recorder.dropped_video_frames if recorder else 0,
        }), flush=True)
    await server.close()

asyncio.run(main())
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _ask(server: subprocess.Popen) -> dict:
    server.stdin.write("stats\n")
    server.stdin.flush()
    line = await asyncio.to_thread(server.stdout.readline)
    return json.loads(line)


async def _run(label: str, max_tiles: int, no_pause: bool, args, folder: str) -> dict:
    from recfw.testing.synthetic import SyntheticCrowd, SyntheticParticipant

    dims, fps = args.size.split("@")
    width, height = (int(x) for x in dims.split("x"))
    fps = int(fps)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(max_tiles), str(fps), folder, "1" if no_pause else "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    options = {"width": width, "height": height, "fps": fps, "texture": True, "frames": 2 * fps}
    host = crowd = None
    try:
        line = await asyncio.to_thread(server.stdout.readline)
        if not line:
            raise RuntimeError(f"{label}: the server did not start")
        visitor, host_link = json.loads(line)
        # Made (their media encoded: seconds of CPU) before anyone joins, so no
        # connection waits on the event loop meanwhile.
        host = SyntheticParticipant(host_link, 0, **options)
        crowd = SyntheticCrowd(visitor, args.people - 1, first=1, **options)
        await host.connect(60)
        await crowd.join(120)
        crowd[-1].speak()  # someone without a tile speaks: the grid changes once
        await asyncio.sleep(3)
        await host.command("start_recording")
        await asyncio.sleep(5)  # warm-up: every decoder running, the speaker shown
        before = await _ask(server)
        cpu0, t0 = _cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(args.seconds)
        cpu1, t1 = _cpu_seconds(server.pid), time.monotonic()
        after = await _ask(server)
        await host._ws.send_json({"type": "stop_recording"})  # (the answer may take a while)
        await asyncio.sleep(2)
        return {
            "label": label,
            "cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0),
            "decoded_fps": (after["decoded"] - before["decoded"]) / (t1 - t0),
            "shown": after["shown"],
            "peak_mb": _peak_mb(server.pid),
            "behind": after["behind"],
            "dropped": after["dropped"],
        }
    finally:
        if crowd is not None:
            await crowd.close()
        if host is not None:
            await host.close()
        server.terminate()
        server.wait(30)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--size", default="640x360@15")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (medians)")
    args = parser.parse_args()
    variants = [("active grid", 16, False), ("decode hidden", 16, True), ("everyone", 49, False)]
    rows: dict[str, list[dict]] = {label: [] for label, _, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for label, tiles, no_pause in variants:
                rows[label].append(await _run(label, tiles, no_pause, args, tmp))
    med = {
        label: {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "label"}
        for label, runs in rows.items()
    }
    print(
        f"\n{args.people} people sending {args.size}, recorded at 1280x720 in the server "
        f"process, {args.seconds:g} s measured, {args.repeat} run(s) each (medians), "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'recording':<14} {'tiles':>5} {'server CPU %':>12} {'decoded fps':>11} "
        f"{'peak MB':>8} {'max behind s':>12} {'dropped':>7}"
    )
    for label, m in med.items():
        print(
            f"{label:<14} {m['shown']:5.0f} {m['cpu_pct']:12.1f} {m['decoded_fps']:11.1f} "
            f"{m['peak_mb']:8.0f} {m['behind']:12.2f} {m['dropped']:7.0f}"
        )
    grid, hidden, everyone = (med[label] for label, _, _ in variants)
    if grid["cpu_pct"] > 0:
        print(
            f"CPU: decode hidden / active grid {hidden['cpu_pct'] / grid['cpu_pct']:.2f}x, "
            f"everyone / active grid {everyone['cpu_pct'] / grid['cpu_pct']:.2f}x; "
            f"decoded frames: {hidden['decoded_fps'] / max(grid['decoded_fps'], 1e-9):.2f}x, "
            f"{everyone['decoded_fps'] / max(grid['decoded_fps'], 1e-9):.2f}x"
        )


if __name__ == "__main__":
    asyncio.run(main())
