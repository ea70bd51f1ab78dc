"""Group rooms: Janus's CPU against recfw's built-in forwarding server, side by side.

For each room size (``--people``, default 10 and 25) and each backend, a room
server runs in a child process and PEOPLE headless participants join it from
this process. Every one publishes pre-encoded VP8 (``PreEncodedVideo``: encoded
once, nothing encoded while measuring) and Opus; VIEWERS of them also receive
everyone else and tap what they get (no decoder), the others receive nothing
(``receive: false``). After a warm-up, the CPU time (user + system, all threads,
``/proc/<pid>/stat``) of the media server is sampled over SECONDS:

* **janus**: Debian's Janus (``recfw.testing.janus.JanusServer``: VideoRoom,
  WebSocket API, loopback only) carries the media; recfw's room server (another
  child process, ``[rooms] backend = "janus"``) only relays the SDP. Both
  processes are measured; the media figure is Janus's.
* **builtin**: recfw's own forwarding server (aiortc, ``[rooms] backend =
  "builtin"``), the room opened in ``group`` mode with ``maxPeople`` = PEOPLE.

Columns: media server CPU (% of one core), CPU ms per second per forwarded video
stream (VIEWERS x (PEOPLE - 1) streams), the video frame rate the viewers got
(median over the viewers' streams) and the publishers sent. Run:

    .venv/bin/python benchmarks/janus_bench.py [--people 10,25] [--viewers 3]
        [--seconds 20] [--size 640x360@15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SERVER = r"""
import asyncio, json, sys
from recfw.config import parse_config
from recfw.manager import load_plugins
from recfw.server import RoomServer
from recfw.server.ice import restrict_host_addresses
from recfw.server.room import Room

async def main():
    backend, people, janus_url, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    data = {"recording": {"type": "none"},
            "server": {"host": "127.0.0.1", "port": 0, "iceAddresses": ["127.0.0.1"],
                       "maxPeople": people}}
    if backend == "janus":
        data["rooms"] = {"backend": "janus", "janusUrl": janus_url, "janusApiSecret": secret}
    config = parse_config(data, environ={})
    plugins = load_plugins()
    server = RoomServer(config, plugins, host_secret="bench", supervise=backend == "janus")
    await server.start()
    restrict_host_addresses(["127.0.0.1"])
    server.rooms["bench"] = Room(
        "bench", server.settings, config, plugins, loopback_only=True, mode="group",
        base_url=server._worker_base_url if backend == "janus" else None,
    )
    print(server.base_url, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(backend: str, people: int, viewers: int, size: str, seconds: float) -> dict:
    from recfw.rooms import Participant
    from recfw.server.client import HeadlessParticipant
    from recfw.server.encoded_source import PreEncodedAudio, PreEncodedVideo, encode_vp8
    from recfw.sources import ParticipantMedia
    from recfw.testing.janus import JanusServer

    dims, fps_text = size.split("@")
    width, height = (int(x) for x in dims.split("x"))
    fps = int(fps_text)
    payloads = encode_vp8(width, height, 2 * fps, fps, bitrate=int(width * height * fps * 0.1))
    janus = JanusServer().start() if backend == "janus" else None
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVER,
            backend,
            str(people),
            janus.url if janus else "-",
            janus.api_secret if janus else "-",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    participants: list[HeadlessParticipant] = []
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        if not base:
            raise RuntimeError(f"{backend}: the room server did not start")
        for i in range(people):
            media = ParticipantMedia(
                Participant(id=f"p{i}"),
                video=PreEncodedVideo(width, height, fps, payloads=payloads),
                audio=PreEncodedAudio(),
            )
            viewer = i >= people - viewers  # the last ones join when everyone publishes
            p = HeadlessParticipant(f"{base}/bench", media, name=f"P{i}", tap_received=viewer)
            await p.connect(timeout=60)
            participants.append(p)
        await asyncio.sleep(8)  # warm-up: every subscription connected and flowing
        taps = [tap for p in participants for tap, _ in p.received]
        counts = [tap.frames for tap in taps]
        sent = [p.media.video.count for p in participants]
        media_pid = janus.pid if janus else server.pid
        cpu0, sig0, t0 = _cpu_seconds(media_pid), _cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, sig1, t1 = _cpu_seconds(media_pid), _cpu_seconds(server.pid), time.monotonic()
        rates = [(tap.frames - c) / (t1 - t0) for c, tap in zip(counts, taps, strict=True)]
        sent_rates = [
            (p.media.video.count - c) / (t1 - t0) for c, p in zip(sent, participants, strict=True)
        ]
        streams = viewers * (people - 1)
        cpu = (cpu1 - cpu0) / (t1 - t0)
        return {
            "backend": backend,
            "people": people,
            "streams": streams,
            "received": len(taps),
            "cpu_pct": 100 * cpu,
            "signalling_pct": 100 * (sig1 - sig0) / (t1 - t0) if janus else None,
            "ms_per_stream": 1000 * cpu / streams,
            "fps": statistics.median(rates) if rates else 0.0,
            "sent_fps": statistics.median(sent_rates),
        }
    finally:
        for p in participants:
            await p.close()
        server.terminate()
        server.wait(10)
        if janus is not None:
            janus.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", default="10,25", help="room sizes, comma-separated")
    parser.add_argument("--viewers", type=int, default=3, help="people who receive everyone")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--size", default="640x360@15", help="what each publisher sends")
    args = parser.parse_args()
    rows = []
    for people in (int(p) for p in args.people.split(",")):
        for backend in ("janus", "builtin"):
            rows.append(await _run(backend, people, args.viewers, args.size, args.seconds))
    print(
        f"\n{args.size} pre-encoded VP8 + Opus per person, {args.viewers} viewers receiving "
        f"everyone, {args.seconds:g} s, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'backend':<8} {'people':>6} {'fwd streams':>11} {'media CPU %':>11} "
        f"{'recfw CPU %':>11} {'ms CPU/s/stream':>15} {'sent fps':>8} {'viewer fps':>10}"
    )
    for r in rows:
        signalling = f"{r['signalling_pct']:.1f}" if r["signalling_pct"] is not None else "-"
        print(
            f"{r['backend']:<8} {r['people']:>6} {r['streams']:>11} {r['cpu_pct']:>11.1f} "
            f"{signalling:>11} {r['ms_per_stream']:>15.2f} {r['sent_fps']:>8.1f} "
            f"{r['fps']:>10.1f}"
        )
    for people in sorted({r["people"] for r in rows}):
        janus, builtin = (
            next(r for r in rows if r["people"] == people and r["backend"] == b)
            for b in ("janus", "builtin")
        )
        if janus["cpu_pct"] > 0:
            print(
                f"{people} people: built-in / Janus media server CPU "
                f"{builtin['cpu_pct'] / janus['cpu_pct']:.1f}x"
            )


if __name__ == "__main__":
    asyncio.run(main())
