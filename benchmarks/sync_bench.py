"""Lip sync of a real Chromium participant over a long recording (issue 9's 10-minute figure).

A room server records (in a ``recfw worker`` process, as ``recfw run`` does) a
2-person meeting: headless Chromium whose fake camera and microphone play a
flash and a beep at the same instants, each beep with its own pitch
(:mod:`recfw.testing.syncmarks`), and a quiet synthetic participant. The page
records its own camera and microphone with ``MediaRecorder`` meanwhile: what
the browser itself captured (its fake camera delivers the file's frames late
when the machine is busy, so the source's own flash/beep offset is not zero).
Printed, from the decoded files:

* the browser's own offsets (beep - flash) and recfw's, each as p50/p95/max of
  the absolute value and the drift (least-squares slope, ms per minute);
* recfw against the browser, beep by beep (the same beep, told apart by
  pitch): the lip-sync error recfw adds. Target: p95 within 33 ms, drift at
  most 5 ms per minute;
* the longest digital silence inside the recording's audio.

Run (10 minutes; ``--hog`` adds a busy loop per core; ``--arrival`` records
with lip sync off, ``RECFW_LIPSYNC=off``, to compare):

    .venv/bin/python benchmarks/sync_bench.py [--seconds 600] [--hog] [--arrival]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = os.environ.get("RECFW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


async def main(seconds: float, hog: bool, keep: Path | None, arrival: bool) -> None:
    from recfw.manager import load_plugins
    from recfw.server.ice import restrict_host_addresses
    from recfw.testing.syncmarks import compare, measure, record_marker_meeting, summary

    restrict_host_addresses(["127.0.0.1"])
    if arrival:  # the recorder process inherits it
        os.environ["RECFW_LIPSYNC"] = "off"
    folder = keep or Path(tempfile.mkdtemp(prefix="recfw-sync-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    hogs = (
        [
            subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 2)
        ]
        if hog
        else []
    )
    started = time.monotonic()
    try:
        recordings, own = await record_marker_meeting(
            folder, load_plugins(), seconds=seconds, chromium=CHROMIUM, chromium_args=CHROMIUM_ARGS
        )
    finally:
        for process in hogs:
            process.kill()
            process.wait()
    source = measure(own)
    marks = [measure(path, white_share=0.15) for path in recordings]
    # (each file on its own timeline; the first seconds of each are arrival timing)
    errors = [e for m in marks for e in compare([p for p in m.pairs if p[0] >= 3.0], source.pairs)]
    pairs = [p for m in marks for p in m.pairs]
    timing = "arrival (RECFW_LIPSYNC=off)" if arrival else "sender's clock"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"sync_bench: {seconds:.0f} s, {timing}, cpu hog: {hog}, load average {load}")
    print(f"  files in {folder} ({time.monotonic() - started:.0f} s wall)")
    print(f"  browser's own recording:   {summary(source.pairs)}")
    print(f"  recordings: {len(recordings)} ({', '.join(p.name for p in recordings)})")
    print(f"  recfw's recording:         {summary(pairs)}")
    if errors:
        print(f"  recfw against the browser: {summary(errors)}")
    else:
        print("  recfw against the browser: no beep in common")
    for path, m in zip(recordings, marks, strict=True):
        print(
            f"  {path.name}: {m.duration:.0f} s, flashes {len(m.flashes)}, beeps "
            f"{len(m.beeps)}, longest digital silence {m.longest_silence:.2f} s"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="recording length")
    parser.add_argument("--hog", action="store_true", help="a busy loop per core meanwhile")
    parser.add_argument("--keep", type=Path, help="folder for the files (default: a temp one)")
    parser.add_argument(
        "--arrival", action="store_true", help="record by arrival timing (RECFW_LIPSYNC=off)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.hog, args.keep, args.arrival))
