"""Room server CPU: forwarding (this tree) vs transcoding (main's relay), side by side.

For each server and each video size, a room server runs in a child process and
PEOPLE synthetic participants (:mod:`recfw.testing.synthetic`) join it from
this process over the room's real signalling. They send pre-encoded VP8
(textured pictures at about a camera's bitrate, encoded once: no encoder while
measuring) and Opus, and keep what they receive encoded (no decoder): the
participants cost next to nothing, so what is measured is the server. After a
warm-up, the server process's CPU time (user + system, all threads,
/proc/<pid>/stat) over SECONDS is sampled.

* **forward**: this tree's server (``recfw.server`` forwards encoded frames).
* **transcode**: the server of another tree (``--before``, default: the commit
  where this branch left ``main``, i.e. the previous relay code), exported with
  ``git archive`` into a temporary folder, whose MediaRelay decodes each person
  once and re-encodes VP8 for every viewer.
  The old path lives only here, as that other tree; it is never selectable in recfw.

Columns: server CPU (% of one core), CPU ms per second per forwarded video
stream (PEOPLE x (PEOPLE-1) streams), and the video frame rate the viewers
actually got (median over all viewer slots; a transcoding server that cannot
keep up delivers fewer frames than the publishers send). Run:

    .venv/bin/python benchmarks/forward_bench.py [--people 4] [--seconds 20]
        [--sizes 320x240@15,1280x720@30] [--before main]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SERVER = r"""
import asyncio, sys
from recfw.config import parse_config
from recfw.manager import load_plugins
from recfw.server import RoomServer
from recfw.server.ice import restrict_host_addresses

async def main():
    config = parse_config({"recording": {"type": "none"},
                           "server": {"host": "127.0.0.1", "port": 0,
                                      "iceAddresses": ["127.0.0.1"]}}, environ={})
    server = RoomServer(config, load_plugins(), host_secret="bench")
    await server.start()
    restrict_host_addresses(["127.0.0.1"])
    print(server.base_url, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _export(ref: str, into: Path) -> Path:
    """``ref``'s tree as an importable ``recfw`` package (core/ + plugins/) under ``into``."""
    tree = into / "tree"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "core", "plugins"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    pkg = into / "path"
    pkg.mkdir()
    (tree / "core").rename(pkg / "recfw")
    (tree / "plugins").rename(pkg / "recfw" / "plugins")
    return pkg


async def _run(label: str, pythonpath: str | None, people: int, size: str, seconds: float):
    from recfw.testing.synthetic import SyntheticParticipant

    dims, fps = size.split("@")
    width, height = (int(x) for x in dims.split("x"))
    fps = int(fps)
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, env=env, text=True
    )
    participants = []
    try:
        base = server.stdout.readline().strip()
        if not base:
            raise RuntimeError(f"{label}: the server did not start")
        for i in range(people):
            p = SyntheticParticipant(
                f"{base}/bench",
                i,
                receive=True,
                width=width,
                height=height,
                fps=fps,
                frames=2 * fps,
                texture=True,
                speaking=True,
            )
            await p.connect(timeout=30)
            participants.append(p)
        await asyncio.sleep(5)  # warm-up: every slot connected and flowing
        # the viewer slots that carry someone (a room has more slots than people - 1)
        taps = [
            tap for p in participants for i, (tap, _) in enumerate(p.received) if p.slots.get(i)
        ]
        counts = [tap.frames for tap in taps]
        sent = [p.media.video.count for p in participants]
        cpu0, t0 = _cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, t1 = _cpu_seconds(server.pid), time.monotonic()
        rates = [(tap.frames - c) / (t1 - t0) for c, tap in zip(counts, taps, strict=True)]
        sent_rates = [
            (p.media.video.count - c) / (t1 - t0) for c, p in zip(sent, participants, strict=True)
        ]
        streams = people * (people - 1)
        cpu = (cpu1 - cpu0) / (t1 - t0)
        return {
            "label": label,
            "size": size,
            "cpu_pct": 100 * cpu,
            "ms_per_stream": 1000 * cpu / streams,
            "fps": statistics.median(rates) if rates else 0.0,
            "sent_fps": statistics.median(sent_rates),
            "ms_per_frame": 1000 * cpu / max(sum(rates), 1e-9),
        }
    finally:
        for p in participants:
            await p.close()
        server.terminate()
        server.wait(10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--sizes", default="320x240@15,1280x720@30")
    parser.add_argument(
        "--before",
        default=None,
        help="git ref of the transcoding server (default: where this branch left main)",
    )
    args = parser.parse_args()
    if args.before is None:
        args.before = subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()[:10]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        before = str(_export(args.before, Path(tmp)))
        for size in args.sizes.split(","):
            rows.append(await _run("forward", None, args.people, size, args.seconds))
            rows.append(
                await _run(f"transcode ({args.before})", before, args.people, size, args.seconds)
            )
    print(
        f"\n{args.people} people, {args.people * (args.people - 1)} forwarded video streams, "
        f"{args.seconds:g} s, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'server':<24} {'video':<12} {'CPU %':>6} {'ms CPU/s/stream':>15} "
        f"{'sent fps':>8} {'viewer fps':>10} {'ms CPU/viewer frame':>19}"
    )
    for r in rows:
        print(
            f"{r['label']:<24} {r['size']:<12} {r['cpu_pct']:6.1f} {r['ms_per_stream']:15.2f} "
            f"{r['sent_fps']:8.1f} {r['fps']:10.1f} {r['ms_per_frame']:19.2f}"
        )
    for size in args.sizes.split(","):
        fwd, old = [r for r in rows if r["size"] == size]
        if fwd["cpu_pct"] > 0:
            print(
                f"{size}: transcoding / forwarding: CPU {old['cpu_pct'] / fwd['cpu_pct']:.1f}x, "
                f"CPU per delivered frame {old['ms_per_frame'] / fwd['ms_per_frame']:.1f}x"
            )


if __name__ == "__main__":
    asyncio.run(main())
