"""Media pipeline benchmarks: recfw's CompositeRecorder against the tools a user would pick.

Three modes, each printing figures, medians and ratios (it measures, it never asserts):

``ffmpeg``  (the reference) the same composite made by recfw and by the ffmpeg
            command line, from the same input files: every tile scaled
            (bilinear) and overlaid on a 1280x720 canvas at recfw's grid
            positions, the audio mixed, H.264 (libx264, preset, CRF 23, keyframe
            every 2 s) + Opus 128k in Matroska. Each run is a fresh child
            process, recfw and ffmpeg in turn (A B A B ...); CPU is user + system
            of the whole child (all threads, from ``wait4``), peak memory its
            ``ru_maxrss``.
``live``    the largest live synthetic room that keeps real time: N participants
            at 640x480@30 (self-paced like cameras) recorded on the wall clock;
            a size keeps real time when no picture was skipped and no audio
            dropped. Also CPU seconds per recorded minute (the robust figure on a
            shared machine).
``aiortc``  recfw's composite vs aiortc's MediaRecorder (one file per
            participant, no compositing) on synthetic non-realtime sources.

::

    .venv/bin/python benchmarks/media_bench.py ffmpeg --people 1,4,9 --seconds 30 --runs 3
    .venv/bin/python benchmarks/media_bench.py live --people 4,9,16,20 --seconds 20
    .venv/bin/python benchmarks/media_bench.py aiortc --people 1,4,9 --seconds 10

The ffmpeg mode needs the ``ffmpeg`` command (Debian: ``apt-get install ffmpeg``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
CANVAS = (1280, 720)
#: live mode: a room "fits" idle cores when its flat-out CPU needs at most this share.
FITS = 0.8
TILE = (640, 480)


def _usage() -> tuple[float, int]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def _measure(cmd: list[str]) -> dict:
    """Run ``cmd`` as a child; its CPU (user+sys, all threads), peak RSS, wall and stdout."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {errors[-2000:]}")
    return {
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "peak_mb": ru.ru_maxrss / 1024,
        "wall_s": wall,
        "stdout": text,
    }


# --- ffmpeg mode ----------------------------------------------------------------------------


def video_bytes(path: Path) -> int:
    """Bytes of the file's video packets (the audio encoders' versions may differ)."""
    import av

    with av.open(str(path)) as c:
        return sum(p.size for p in c.demux(video=0) if p.size)


def make_inputs(folder: Path, people: int, seconds: float) -> list[Path]:
    """``people`` different 640x480@30 H.264 + Opus 48 kHz stereo files (made once, kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(people):
        path = folder / f"in2-{i + 1}-{seconds:g}s.mkv"
        paths.append(path)
        if path.exists():
            continue
        w, h = TILE
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
        cmd += ["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate=30:duration={seconds:g}"]
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={220 + 60 * i}:sample_rate=48000"]
        # Tones at -20 dB: nine of them add up below full scale, so neither tool's
        # mix clips or limits and both encode the same audio.
        cmd += ["-vf", f"hue=h={i * 40}", "-af", "volume=0.1", "-t", f"{seconds:g}"]
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "60"]
        cmd += ["-pix_fmt", "yuv420p", "-c:a", "libopus", "-b:a", "64k", "-ac", "2"]
        subprocess.run([*cmd, str(path)], check=True)
    return paths


def ffmpeg_command(inputs: list[Path], out: Path, seconds: float, preset: str) -> list[str]:
    """The ffmpeg command line doing recfw's composite (same grid, scaler, x264 settings)."""
    from recfw.media import fit, grid

    n = len(inputs)
    w, h = CANVAS
    parts = [f"color=c=black:size={w}x{h}:rate=30:duration={seconds:g},format=yuv420p[bg0]"]
    for i, cell in enumerate(grid(n, w, h)):
        r = fit(TILE[0], TILE[1], cell)
        parts.append(f"[{i}:v]scale={r.w}:{r.h}:flags=bilinear[s{i}]")
        parts.append(f"[bg{i}][s{i}]overlay={r.x}:{r.y}:eof_action=pass[bg{i + 1}]")
    mix = "".join(f"[{i}:a]" for i in range(n))
    parts.append(f"{mix}amix=inputs={n}:duration=longest:normalize=0[a]")
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    for path in inputs:
        cmd += ["-i", str(path)]
    cmd += ["-filter_complex", ";".join(parts), "-map", f"[bg{n}]", "-map", "[a]"]
    cmd += ["-t", f"{seconds:g}", "-c:v", "libx264", "-preset", preset, "-crf", "23"]
    cmd += ["-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p"]
    cmd += ["-c:a", "libopus", "-b:a", "128k", "-ar", "48000", "-ac", "2"]
    cmd += ["-flush_packets", "1", "-cluster_time_limit", "1000", str(out)]
    return cmd


async def _recfw_files(inputs: list[Path], out: Path, seconds: float, preset: str) -> dict:
    from recfw.media import CompositeRecorder
    from recfw.plugins.encoders import MkvEncoder
    from recfw.plugins.sources.file import FileSource
    from recfw.rooms import Participant, Role

    src = FileSource()
    with open(out, "wb") as f:
        rec = CompositeRecorder(MkvEncoder(), f, options={"preset": preset}, realtime=False)
        for i, path in enumerate(inputs):
            p = Participant(f"p{i + 1}", role=Role.VISITOR)
            rec.add(src.create(p, {"path": str(path), "realtime": False}))
        await rec.start()
        await rec.wait_until(seconds)
        stats = await rec.stop()
    return {"recorded_s": stats.duration_s}


def compare_ffmpeg(args: argparse.Namespace) -> None:
    if shutil.which("ffmpeg") is None:
        sys.exit("the ffmpeg mode needs the ffmpeg command (Debian: apt-get install ffmpeg)")
    people = [int(x) for x in args.people.split(",")]
    cache = Path(args.inputs)
    inputs = make_inputs(cache, max(people), args.seconds)
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    print(f"{os.cpu_count()} CPUs; {version.splitlines()[0]}")
    print(
        f"{args.seconds:g} s of {len(inputs)} input files (640x480@30 H.264 + Opus stereo) -> "
        f"1280x720@30 H.264 {args.preset} CRF 23 + Opus 128k (mkv); {args.runs} runs each, "
        "interleaved; medians"
    )
    head = (
        f"{'people':>6} | {'tool':6} {'CPU s/min':>9} {'peak MB':>8} {'wall s':>7} {'MB out':>7}"
        f" | {'CPU x':>6} {'mem x':>6} {'size x':>6} {'video x':>7}"
    )
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for n in people:
            rows: dict[str, list[dict]] = {"recfw": [], "ffmpeg": []}
            ratios: list[tuple[float, float]] = []
            for _ in range(args.runs):
                out_r, out_f = Path(tmp) / "recfw.mkv", Path(tmp) / "ffmpeg.mkv"
                cmd = [sys.executable, str(HERE), "child-files", "--people", str(n)]
                cmd += ["--seconds", str(args.seconds), "--preset", args.preset]
                cmd += ["--inputs", str(cache), "--out", str(out_r)]
                r = _measure(cmd)
                r["bytes"], r["video_bytes"] = out_r.stat().st_size, video_bytes(out_r)
                f = _measure(ffmpeg_command(inputs[:n], out_f, args.seconds, args.preset))
                f["bytes"], f["video_bytes"] = out_f.stat().st_size, video_bytes(out_f)
                rows["recfw"].append(r)
                rows["ffmpeg"].append(f)
                ratios.append((r["cpu_s"] / f["cpu_s"], r["peak_mb"] / f["peak_mb"]))
            med = {
                tool: {
                    k: statistics.median(x[k] for x in runs)
                    for k in ("cpu_s", "peak_mb", "wall_s", "bytes", "video_bytes")
                }
                for tool, runs in rows.items()
            }
            for tool in ("recfw", "ffmpeg"):
                m = med[tool]
                line = (
                    f"{n:>6} | {tool:6} {m['cpu_s'] / args.seconds * 60:9.1f} {m['peak_mb']:8.0f}"
                    f" {m['wall_s']:7.1f} {m['bytes'] / 1e6:7.2f} |"
                )
                if tool == "recfw":
                    cpu_x = statistics.median(c for c, _ in ratios)
                    mem_x = statistics.median(m for _, m in ratios)
                    line += (
                        f" {cpu_x:6.2f} {mem_x:6.2f}"
                        f" {med['recfw']['bytes'] / med['ffmpeg']['bytes']:6.3f}"
                        f" {med['recfw']['video_bytes'] / med['ffmpeg']['video_bytes']:7.4f}"
                    )
                    spread = [round(c, 2) for c, _ in ratios]
                    line += f"   (CPU x per run: {spread})"
                print(line, flush=True)
    print(
        "CPU x, mem x: recfw / ffmpeg, median of the per-run pairs (< 1: recfw cheaper); "
        "size x / video x: output size ratio, whole file / video stream only (the audio "
        "differs with the libopus versions bundled). Whole processes: recfw's include "
        "starting Python."
    )


# --- live mode ----------------------------------------------------------------------------


async def _live(people: int, seconds: float, preset: str) -> dict:
    import io

    from recfw.media import CompositeRecorder
    from recfw.plugins.encoders import MkvEncoder
    from recfw.plugins.sources.synthetic import SyntheticSource
    from recfw.rooms import Participant, Role

    src = SyntheticSource()
    rec = CompositeRecorder(MkvEncoder(), io.BytesIO(), options={"preset": preset}, realtime=True)
    for i in range(people):
        p = Participant(f"p{i + 1}", role=Role.VISITOR)
        rec.add(src.create(p, {"realtime": True, "channels": 2}))
    await rec.start()
    await asyncio.sleep(seconds)
    stats = await rec.stop()
    return {
        "recorded_s": stats.duration_s,
        "skipped_frames": stats.skipped_frames,
        "dropped_audio_s": stats.dropped_audio_s,
        "max_behind_s": stats.max_behind_s,
    }


def live_capacity(args: argparse.Namespace) -> None:
    people = [int(x) for x in args.people.split(",")]
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs (load average {load[0]:.1f} at the start: other work on the "
        f"machine makes these figures pessimistic); live synthetic rooms of 640x480@30 "
        f"participants, {args.seconds:g} s each, 1280x720 H.264 {args.preset} + Opus"
    )
    head = (
        f"{'people':>6} | {'real time':>9} {'skipped':>7} {'audio lost s':>12}"
        f" {'max behind s':>12} {'CPU s/min':>9} {'peak MB':>8} | {'flat-out CPU s/min':>18}"
        f" {'cores needed':>12}"
    )
    print(head)
    print("-" * len(head))
    best = fits = 0
    for n in people:
        cmd = [sys.executable, str(HERE), "child-live", "--people", str(n)]
        cmd += ["--seconds", str(args.seconds), "--preset", args.preset]
        m = _measure(cmd)
        r = json.loads(m["stdout"].strip().splitlines()[-1])
        ok = r["skipped_frames"] == 0 and r["dropped_audio_s"] == 0
        best = n if ok and n > best else best
        # The same room recorded flat out (virtual clock, unpaced sources): the CPU
        # it needs per recorded minute, whatever else the machine runs.
        cmd = [sys.executable, str(HERE), "child-synthetic", "--people", str(n), "--kind"]
        cmd += ["recfw", "--seconds", str(args.seconds), "--preset", args.preset]
        flat = json.loads(_measure(cmd)["stdout"].strip().splitlines()[-1])
        need = flat["cpu_s_per_min"] / 60
        fits = n if need <= FITS * (os.cpu_count() or 1) and n > fits else fits
        print(
            f"{n:>6} | {'yes' if ok else 'NO':>9} {r['skipped_frames']:7d}"
            f" {r['dropped_audio_s']:12.2f} {r['max_behind_s']:12.2f}"
            f" {m['cpu_s'] / r['recorded_s'] * 60:9.1f} {m['peak_mb']:8.0f} |"
            f" {flat['cpu_s_per_min']:18.1f} {need:12.2f}",
            flush=True,
        )
    print(f"largest room that kept real time here: {best} people")
    print(
        f"largest room whose flat-out CPU fits in {FITS:.0%} of {os.cpu_count()} idle cores: "
        f"{fits} people"
    )


# --- aiortc mode ----------------------------------------------------------------------------


async def _recfw_synthetic(people: int, seconds: float, out_dir: Path, preset: str) -> dict:
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
            rec.add(src.create(p, {"realtime": False, "channels": 2}))
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
        media = src.create(p, {"realtime": False, "duration_s": seconds, "channels": 2})
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


def compare_aiortc(args: argparse.Namespace) -> None:
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
        res = {}
        for kind in ("recfw", "aiortc"):
            cmd = [sys.executable, str(HERE), "child-synthetic", "--people", str(n)]
            cmd += ["--seconds", str(args.seconds), "--preset", args.preset, "--kind", kind]
            res[kind] = json.loads(_measure(cmd)["stdout"].strip().splitlines()[-1])
        r, a = res["recfw"], res["aiortc"]
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
            print(line, flush=True)
    print("ratios are recfw / aiortc (RTF x > 1: recfw faster; CPU x, mem x < 1: recfw cheaper)")


# --- children (one measurement each, in a fresh process) ------------------------------------


def child(args: argparse.Namespace) -> None:
    if args.mode == "child-files":
        inputs = make_inputs(Path(args.inputs), args.people, args.seconds)
        asyncio.run(_recfw_files(inputs, Path(args.out), args.seconds, args.preset))
        return
    if args.mode == "child-live":
        print(json.dumps(asyncio.run(_live(args.people, args.seconds, args.preset))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, _ = _usage()
        t0 = time.perf_counter()
        fn = _recfw_synthetic if args.kind == "recfw" else _aiortc
        result = asyncio.run(fn(args.people, args.seconds, Path(tmp), args.preset))
        wall = time.perf_counter() - t0
        cpu1, maxrss = _usage()
    result.update(
        kind=args.kind,
        people=args.people,
        wall_s=wall,
        rtf=result["recorded_s"] / wall,
        cpu_s_per_min=(cpu1 - cpu0) / result["recorded_s"] * 60,
        peak_mb=maxrss / 1024,
    )
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "mode",
        nargs="?",
        default="ffmpeg",
        choices=["ffmpeg", "live", "aiortc", "child-files", "child-live", "child-synthetic"],
    )
    ap.add_argument("--people", default=None, help="comma-separated room sizes")
    ap.add_argument("--seconds", type=float, default=None, help="recorded seconds per run")
    ap.add_argument("--runs", type=int, default=3, help="ffmpeg mode: runs of each tool")
    ap.add_argument("--preset", default="veryfast", help="x264 preset")
    ap.add_argument(
        "--inputs",
        default=str(Path(tempfile.gettempdir()) / "recfw-bench-inputs"),
        help="ffmpeg mode: folder for the generated input files (kept between runs)",
    )
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--kind", choices=["recfw", "aiortc"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode.startswith("child-"):
        args.people = int(args.people)
        child(args)
        return
    defaults = {"ffmpeg": ("1,4,9", 30.0), "live": ("4,9,16,20", 20.0), "aiortc": ("1,4,9", 10.0)}
    people, seconds = defaults[args.mode]
    args.people = args.people or people
    args.seconds = args.seconds or seconds
    {"ffmpeg": compare_ffmpeg, "live": live_capacity, "aiortc": compare_aiortc}[args.mode](args)


if __name__ == "__main__":
    main()
