"""The active grid's cost: recording a large room with and without tiles for everyone.

Two modes, each comparing three recordings side by side (medians over
``--repeat`` runs; it measures, it never asserts):

``offline`` (default) the recorder alone, on the virtual clock (as fast as it
goes), in a fresh child process per run: PEOPLE participants' pre-encoded VP8
(textured, about a camera's bitrate) and Opus are fed into real
:class:`~recfw.server.aiortc_tap.ReceiverTap` objects as aiortc's jitter buffer
would hand them over, and the recorder reads them through
:class:`~recfw.server.forward.DecodedTrack` exactly as a live recording does.
CPU is the child's user + system time (all threads) for SECONDS of recording,
so the figure does not depend on what else the machine runs; one participant
speaks, so the grid changes once (a paused track resumes).

``live`` a room server runs in a child process and records in that process (the
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

    .venv/bin/python benchmarks/grid_bench.py [offline|live] [--people 25]
        [--seconds 20] [--size 640x360@15] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
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


class _Network:
    """The network end of a fed tap: a keyframe request restarts the feeder's loop."""

    def __init__(self) -> None:
        self.on_pli = lambda: None

    def getSynchronizationSources(self):  # noqa: N802 - aiortc's name
        self.on_pli()
        return []


async def _offline_child(args) -> dict:
    """One offline recording (in this process); returns its figures."""
    from recfw.media import CompositeRecorder
    from recfw.media.activegrid import GridPolicy
    from recfw.plugins.encoders import MkvEncoder
    from recfw.server.aiortc_tap import STATS, ReceiverTap
    from recfw.server.forward import DecodedTrack
    from recfw.sources import ParticipantMedia
    from recfw.testing.synthetic import synthetic_media

    if args.no_pause:
        DecodedTrack.pause = lambda self: None  # type: ignore[method-assign]
    dims, fps_text = args.size.split("@")
    width, height = (int(x) for x in dims.split("x"))
    fps = int(fps_text)
    sources = [
        synthetic_media(
            i,
            width=width,
            height=height,
            fps=fps,
            frames=2 * fps,
            texture=True,
            speaking=i == args.people - 1,
        )
        for i in range(args.people)
    ]
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    with tempfile.TemporaryFile() as output:
        rec = CompositeRecorder(
            MkvEncoder(), output, realtime=False, grid=GridPolicy(max_tiles=args.max_tiles)
        )
        feeders = []

        async def feed(tap, payloads, rate, clock_rate, mime, network) -> None:
            # Paced on the output: frames up to half a second ahead of it. A keyframe
            # request restarts the loop at its keyframe, sent at once (as a publisher
            # answers a PLI), and the pacing starts again from there.
            n = k = index = 0
            base = 0.0

            def restart() -> None:
                nonlocal index, k, base
                index, k, base = 0, 0, rec.position

            network.on_pli = restart
            while True:
                due = base + k / rate - 0.5
                if due > rec.position:
                    await rec._wait_for_position(due)
                    continue
                tap._frame(mime, payloads[index], round(n * clock_rate / rate))
                index = (index + 1) % len(payloads)
                n += 1
                k += 1

        for media in sources:
            taps = []
            for kind, track, rate, clock_rate, mime in (
                ("video", media.video, fps, 90000, "video/VP8"),
                ("audio", media.audio, 50, 48000, "audio/opus"),
            ):
                network = _Network()
                tap = ReceiverTap(network, kind)  # type: ignore[arg-type]
                taps.append(tap)
                feeders.append(
                    asyncio.ensure_future(
                        feed(tap, track.payloads, rate, clock_rate, mime, network)
                    )
                )
            rec.add(
                ParticipantMedia(
                    media.participant, video=DecodedTrack(taps[0]), audio=DecodedTrack(taps[1])
                )
            )
        await rec.start()
        await rec.wait_until(args.seconds)
        shown = len(rec.shown)
        stats = await rec.stop()
        for f in feeders:
            f.cancel()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {
        "cpu_per_s": cpu / stats.duration_s,
        "wall_per_s": (time.monotonic() - wall0) / stats.duration_s,
        "decoded_fps": STATS.frames_decoded.get("video", 0) / stats.duration_s,
        "shown": shown,
        "peak_mb": ru1.ru_maxrss / 1024,
    }


def _offline(args) -> None:
    variants = [("active grid", 16, False), ("decode hidden", 16, True), ("everyone", 49, False)]
    rows: dict[str, list[dict]] = {label: [] for label, _, _ in variants}
    for _ in range(args.repeat):
        for label, tiles, no_pause in variants:
            cmd = [
                sys.executable,
                __file__,
                "offline-child",
                "--people",
                str(args.people),
                "--seconds",
                str(args.seconds),
                "--size",
                args.size,
                "--max-tiles",
                str(tiles),
            ] + (["--no-pause"] if no_pause else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows[label].append(json.loads(out.strip().splitlines()[-1]))
    med = {
        label: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for label, runs in rows.items()
    }
    print(
        f"\noffline: {args.people} people sending {args.size} (pre-encoded, textured), "
        f"{args.seconds:g} s recorded at 1280x720 on the virtual clock, "
        f"{args.repeat} run(s) each (medians), load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'recording':<14} {'tiles':>5} {'CPU s per s':>11} {'wall s per s':>12} "
        f"{'decoded fps':>11} {'peak MB':>8}"
    )
    for label, m in med.items():
        print(
            f"{label:<14} {m['shown']:5.0f} {m['cpu_per_s']:11.2f} {m['wall_per_s']:12.2f} "
            f"{m['decoded_fps']:11.1f} {m['peak_mb']:8.0f}"
        )
    grid, hidden, everyone = (med[label] for label, _, _ in variants)
    print(
        f"CPU: decode hidden / active grid {hidden['cpu_per_s'] / grid['cpu_per_s']:.2f}x, "
        f"everyone / active grid {everyone['cpu_per_s'] / grid['cpu_per_s']:.2f}x; "
        f"decoded frames {hidden['decoded_fps'] / grid['decoded_fps']:.2f}x, "
        f"{everyone['decoded_fps'] / grid['decoded_fps']:.2f}x"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "mode", nargs="?", default="offline", choices=["offline", "live", "offline-child"]
    )
    parser.add_argument("--people", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--size", default="640x360@15")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (medians)")
    parser.add_argument("--max-tiles", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--no-pause", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode == "offline-child":
        print(json.dumps(await _offline_child(args)))
        return
    if args.mode == "offline":
        _offline(args)
        return
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
