"""Media pipeline benchmark: recfw's CompositeRecorder vs aiortc's MediaRecorder.

For 1, 4 and 9 synthetic participants (640x480@30, tone, non-realtime so the
pipeline runs as fast as it can), record SECONDS of media and measure:

* real-time factor (recorded seconds / wall seconds; > 1 is faster than real time),
* CPU seconds per recorded minute (user + system, all threads, getrusage),
* peak memory (ru_maxrss of a fresh child process per run).

recfw composites everyone into one 1280x720 grid with mixed audio and writes one
mkv (H.264 veryfast CRF 23 + Opus). aiortc's MediaRecorder does no compositing:
it records each participant's tracks into a file of its own (mp4: H.264 at
libx264's default preset + AAC, at the track's 640x480), so it encodes N
smaller pictures instead of one 720p composite. The table prints both and the
ratios. Run:

    .venv/bin/python benchmarks/media_bench.py [--seconds 10] [--people 1,4,9] [--preset veryfast]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _usage() -> tuple[float, int]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss


async def _recfw(people: int, seconds: float, out_dir: Path, preset: str) -> dict:
    from recfw.media import CompositeRecorder
    from recfw.plugins.encoders import MkvEncoder
    from recfw.plugins.sources.synthetic import SyntheticSource
    from recfw.rooms import Participant, Role

    src = SyntheticSource()
    path = out_dir / "recfw.mkv"
    with open(path, "wb") as out:
        rec = CompositeRecorder(MkvEncoder(), out, options={"preset": preset}, realtime=False)
        for i in range(people):
            p = Participant(f"p{i + 1}", role=Role.VISITOR)
            rec.add(src.create(p, {"realtime": False}))
        await rec.start()
        await rec.wait_until(seconds)
        stats = await rec.stop()
    return {"recorded_s": stats.duration_s, "bytes": path.stat().st_size, "files": 1}


async def _aiortc(people: int, seconds: float, out_dir: Path, preset: str) -> dict:
    from aiortc.contrib.media import MediaRecorder
    from recfw.plugins.sources.synthetic import SyntheticSource
    from recfw.rooms import Participant, Role

    src = SyntheticSource()
    recorders, paths = [], []
    for i in range(people):
        p = Participant(f"p{i + 1}", role=Role.VISITOR)
        media = src.create(p, {"realtime": False, "duration_s": seconds})
        path = out_dir / f"aiortc-{i + 1}.mp4"
        rec = MediaRecorder(str(path))
        rec.addTrack(media.video)
        rec.addTrack(media.audio)
        recorders.append((rec, media))
        paths.append(path)
    for rec, _ in recorders:
        await rec.start()
    # The tracks end after `seconds`; MediaRecorder's tasks stop at the end of stream.
    while any(m.video.readyState == "live" or m.audio.readyState == "live" for _, m in recorders):
        await asyncio.sleep(0.01)
    for rec, _ in recorders:
        await rec.stop()
    return {"recorded_s": seconds, "bytes": sum(p.stat().st_size for p in paths), "files": people}


def child(kind: str, people: int, seconds: float, preset: str) -> None:
    """Run one measurement in this (fresh) process and print it as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, _ = _usage()
        t0 = time.perf_counter()
        fn = _recfw if kind == "recfw" else _aiortc
        result = asyncio.run(fn(people, seconds, Path(tmp), preset))
        wall = time.perf_counter() - t0
        cpu1, maxrss = _usage()
    result.update(
        kind=kind,
        people=people,
        wall_s=wall,
        rtf=result["recorded_s"] / wall,
        cpu_s_per_min=(cpu1 - cpu0) / result["recorded_s"] * 60,
        peak_mb=maxrss / 1024,
    )
    print(json.dumps(result))


def run(kind: str, people: int, seconds: float, preset: str) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--people", str(people)]
    cmd += ["--seconds", str(seconds), "--preset", preset]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--people", default="1,4,9")
    ap.add_argument("--preset", default="veryfast", help="recfw's x264 preset")
    ap.add_argument("--child", choices=["recfw", "aiortc"])
    args = ap.parse_args()
    if args.child:
        child(args.child, int(args.people), args.seconds, args.preset)
        return
    print(f"{os.cpu_count()} CPUs; {args.seconds:g} s of 640x480@30 + 48 kHz per participant")
    print(f"recfw: one 1280x720 composite mkv (H.264 {args.preset} crf 23 + Opus)")
    print("aiortc MediaRecorder: one 640x480 mp4 per participant (H.264 default preset + AAC)")
    head = (
        f"{'people':>6} | {'':6} {'RTF':>6} {'CPU s/min':>10} {'peak MB':>8} {'MB out':>7} |"
        f" {'RTF x':>6} {'CPU x':>6} {'mem x':>6}"
    )
    print(head)
    print("-" * len(head))
    for n in [int(x) for x in args.people.split(",")]:
        r = run("recfw", n, args.seconds, args.preset)
        a = run("aiortc", n, args.seconds, args.preset)
        for row, name in ((r, "recfw"), (a, "aiortc")):
            line = (
                f"{n:>6} | {name:6} {row['rtf']:6.2f} {row['cpu_s_per_min']:10.1f}"
                f" {row['peak_mb']:8.0f} {row['bytes'] / 1e6:7.2f} |"
            )
            if name == "recfw":
                line += (
                    f" {r['rtf'] / a['rtf']:6.2f} {r['cpu_s_per_min'] / a['cpu_s_per_min']:6.2f}"
                    f" {r['peak_mb'] / a['peak_mb']:6.2f}"
                )
            print(line)
    print("ratios are recfw / aiortc (RTF x > 1: recfw faster; CPU x, mem x < 1: recfw cheaper)")


if __name__ == "__main__":
    main()
