"""Recording jobs on Redis: dispatch rate, trigger-to-recorder latency, recorder cost.

Three parts, one run, each side by side with what a user would otherwise pick:

* **dispatch**: jobs per second through recfw's job stream (``XADD``, then
  ``XREADGROUP`` by CONSUMERS workers, ``XACK`` + ``XDEL`` each: what a worker
  does per job) against a plain Redis list (``RPUSH`` / ``BLPOP``: no
  acknowledgement, no pending list, no reclaiming). JOBS jobs, REPEATS times in
  turn; medians and the ratio.
* **latency**: time from the trigger (a person's join request to a room whose
  trigger is ``automatic``) to the recorder in the room and recording (the
  room's status ``started``, as that person's page gets it), RUNS rooms for each of
  ``recfw run`` with the embedded default (a local ``recfw worker`` process per
  recording) and ``recfw run`` with ``[workers] queue`` + one ``recfw worker
  --queue`` (warm; it still starts a recorder process per job), alternated;
  p50/p95 and the ratio.
* **cost** (``--cost-people 1,3``): CPU of the recorder process (user + system,
  /proc) over SECONDS of recording, per number of people sending 1280x720@30
  pre-encoded VP8 (cheap publishers: no encoder while measuring). The figures
  behind :data:`recfw.queue.cost.BASE_CORES` / ``PER_PERSON_CORES``.

Everything runs on 127.0.0.1; Redis is Debian's ``redis-server`` in a temp folder.
Run::

    .venv/bin/python benchmarks/queue_bench.py [--jobs 2000] [--repeats 3]
        [--runs 5] [--cost-people 1,3] [--seconds 10] [--decode-only]

The per-person decode cost is measured flat out (``--decode-only``: only that);
the composite and encode cost per room size flat out by ``media_bench.py live``
("cores needed"). Live CPU figures (``--cost-people``) on a machine shared with
other work are the recorder's *share*, not its need: read them with the load
average printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from recfw.testing.processes import RECFW, local_run_config

CONFIG = local_run_config()
QUEUE = """
[workers]
queue = "{url}"
admissionTimeout = 60
"""


# --- dispatch -------------------------------------------------------------------------


async def _dispatch_stream(url: str, jobs: int, consumers: int) -> float:
    from recfw.queue.redisq import JOBS, JobQueue, QueuedJob
    from recfw.worker.job import RecordingJob

    producer = JobQueue(url)
    await producer.redis.delete(JOBS)
    await producer.ensure_group()
    job = RecordingJob("http://127.0.0.1:9", "room", "token" * 8, "id", "room-2026.mkv")
    workers = [JobQueue(url) for _ in range(consumers)]
    done = 0

    async def consume(q: JobQueue, name: str) -> None:
        nonlocal done
        while done < jobs:
            found = await q.read_job(name, 100)
            if found is not None:
                await q.done(found[0])
                done += 1

    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(consume(q, f"w{i}")) for i, q in enumerate(workers)]
    for i in range(jobs):
        await producer.enqueue(QueuedJob(f"j{i}", job, 0.5, 1))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    for q in [producer, *workers]:
        await q.close()
    return jobs / elapsed


async def _dispatch_list(url: str, jobs: int, consumers: int) -> float:
    import json

    import redis.asyncio as aioredis

    producer = aioredis.from_url(url, decode_responses=True)
    await producer.delete("bench:list")
    payload = json.dumps({"job": {"room": "room", "token": "token" * 8}, "cost": 0.5})
    workers = [aioredis.from_url(url, decode_responses=True) for _ in range(consumers)]
    done = 0

    async def consume(r) -> None:
        nonlocal done
        while done < jobs:
            if await r.blpop(["bench:list"], timeout=0.1) is not None:
                done += 1

    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(consume(r)) for r in workers]
    for _ in range(jobs):
        await producer.rpush("bench:list", payload)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    for r in [producer, *workers]:
        await r.aclose()
    return jobs / elapsed


async def dispatch(url: str, jobs: int, repeats: int, consumers: int) -> None:
    stream, plain = [], []
    for _ in range(repeats):
        stream.append(await _dispatch_stream(url, jobs, consumers))
        plain.append(await _dispatch_list(url, jobs, consumers))
    s, p = statistics.median(stream), statistics.median(plain)
    print(f"\ndispatch: {jobs} jobs, {consumers} consumers, median of {repeats}")
    print(f"  {'recfw job stream (XADD/XREADGROUP/XACK+XDEL)':48} {s:10.0f} jobs/s")
    print(f"  {'plain Redis list (RPUSH/BLPOP, no ack)':48} {p:10.0f} jobs/s")
    print(f"  stream / list: {s / p:.2f}x")


# --- latency and cost -------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _recorders_under(root: int) -> list[int]:
    """``recfw.worker -`` recorder processes descending from ``root``."""
    parents: dict[int, int] = {}
    commands: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = []
    for pid, cmd in commands.items():
        if b"recfw.worker" not in cmd:
            continue
        p = pid
        while p > 1:
            p = parents.get(p, 0)
            if p == root:
                found.append(pid)
                break
    return found


class Setup:
    """``recfw run`` (+ a queue worker) in a temp folder."""

    def __init__(self, folder: Path, queue_url: str | None):
        self.folder = folder
        self.queue_url = queue_url
        self.procs: list[asyncio.subprocess.Process] = []
        self.base = ""
        self.root = 0

    async def start(self) -> None:
        from recfw.control.crypto import new_key
        from recfw.testing.processes import start_run

        self.folder.mkdir(parents=True, exist_ok=True)
        text = CONFIG + (QUEUE.format(url=self.queue_url) if self.queue_url else "")
        (self.folder / "recfw.toml").write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
        env.update(RECFW_SECRET_KEY=new_key(), PYTHONUNBUFFERED="1")
        run, self.base = await start_run(self.folder, env)
        self.procs.append(run)
        self.root = run.pid
        asyncio.ensure_future(_drain(run))
        if self.queue_url:
            worker = await asyncio.create_subprocess_exec(
                RECFW, "worker", "--config", "recfw.toml", "--name", "bench",
                "--capacity", "64", cwd=self.folder, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            self.procs.append(worker)
            self.root = worker.pid
            from recfw.queue.redisq import JobQueue

            q = JobQueue(self.queue_url)
            while "bench" not in {w["name"] for w in await q.workers()}:
                await asyncio.sleep(0.1)
            await q.close()

    async def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.returncode is None:
                proc.send_signal(2)
                try:
                    await asyncio.wait_for(proc.wait(), 90)
                except TimeoutError:
                    proc.kill()


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    while await proc.stdout.readline():
        pass


def _person(i: int, width: int, height: int, fps: int, payloads):
    from recfw.rooms import Participant
    from recfw.server.encoded_source import PreEncodedAudio, PreEncodedVideo
    from recfw.sources import ParticipantMedia

    return ParticipantMedia(
        Participant(id=f"p{i}"),
        video=PreEncodedVideo(width, height, fps, payloads=payloads),
        audio=PreEncodedAudio(),
    )


async def _one_recording(setup: Setup, room: str, people: int, payloads, sample: float):
    """Join ``people``; return (trigger->started seconds, recorder CPU cores over ``sample``)."""
    from recfw.server.client import HeadlessParticipant

    joined = []
    seen: dict[str, float] = {}

    def status(message: dict) -> None:
        if message.get("type") == "recording" and isinstance(message.get("recording"), str):
            seen.setdefault(message["recording"], time.monotonic())

    try:
        while len(_recorders_under(setup.root)) > 0:  # the previous recorder is gone
            await asyncio.sleep(0.1)
        first = HeadlessParticipant(
            f"{setup.base}/{room}",
            _person(0, 1280, 720, 30, payloads),
            name="P0",
            on_message=status,
        )
        # From the trigger (the first person's join: the room server starts the
        # recording while it handles it) to the recorder in the room and recording
        # (the status "started" the person's page gets).
        t0 = time.monotonic()
        await first.connect(timeout=120)
        joined.append(first)
        while "started" not in seen:
            await asyncio.sleep(0.01)
        latency = seen["started"] - t0
        for i in range(1, people):
            p = HeadlessParticipant(
                f"{setup.base}/{room}", _person(i, 1280, 720, 30, payloads), name=f"P{i}"
            )
            await p.connect(timeout=120)
            joined.append(p)
        cores = None
        if sample > 0:
            await asyncio.sleep(3.0)  # warm-up: every tile decoding
            pids = _recorders_under(setup.root)
            if len(pids) == 1:
                c0, w0 = _cpu_seconds(pids[0]), time.monotonic()
                await asyncio.sleep(sample)
                cores = (_cpu_seconds(pids[0]) - c0) / (time.monotonic() - w0)
        else:
            await asyncio.sleep(1.0)
        return latency, cores
    finally:
        for p in joined:
            await p.__aexit__(None, None, None)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def latency_and_cost(
    url: str, runs: int, cost_people: list[int], seconds: float, folder: Path
) -> None:
    from recfw.server.encoded_source import encode_vp8
    from recfw.server.ice import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    payloads = encode_vp8(1280, 720, 60, 30)
    embedded = Setup(folder / "embedded", None)
    queued = Setup(folder / "queued", url)
    await embedded.start()
    await queued.start()
    times: dict[str, list[float]] = {"embedded": [], "redis": []}
    try:
        for i in range(runs):
            for label, setup in (("embedded", embedded), ("redis", queued)):
                latency, _ = await _one_recording(setup, f"lat{i}", 1, payloads, 0)
                times[label].append(latency)
                await asyncio.sleep(2.0)  # the file is stored, the recorder gone
        print(f"\ntrigger -> recorder joined and recording: {runs} rooms each, alternated")
        for label, values in times.items():
            print(
                f"  {label:10} p50 {_pct(values, 0.5):6.2f} s   p95 {_pct(values, 0.95):6.2f} s"
                f"   ({', '.join(f'{v:.2f}' for v in values)})"
            )
        ratio = _pct(times["redis"], 0.5) / _pct(times["embedded"], 0.5)
        print(f"  redis / embedded (p50): {ratio:.2f}x")
        if cost_people:
            print(f"\nrecorder CPU, 1280x720@30 people (pre-encoded VP8), {seconds:g} s each")
            for people in cost_people:
                for label, setup in (("embedded", embedded), ("redis", queued)):
                    _, cores = await _one_recording(
                        setup, f"cost{people}{label}", people, payloads, seconds
                    )
                    shown = f"{cores:.2f} cores" if cores is not None else "n/a"
                    print(f"  {people} people, {label:8}: {shown}")
                    await asyncio.sleep(2.0)
    finally:
        await queued.stop()
        await embedded.stop()


def decode_cost(seconds: float) -> float:
    """Cores one person's 1280x720@30 VP8 costs a recorder to decode (flat out, one
    thread: CPU seconds per second of video), the part of a person's cost that the
    flat-out composite of ``media_bench.py live`` (raw pictures) does not include."""
    import av
    from recfw.server.encoded_source import encode_vp8

    payloads = encode_vp8(1280, 720, 30, 30)  # one second, a keyframe first
    codec = av.CodecContext.create("libvpx", "r")
    c0 = time.process_time()
    for _ in range(int(seconds)):
        for data in payloads:
            for frame in codec.decode(av.Packet(data)):
                frame.to_ndarray(format="yuv420p")
    return (time.process_time() - c0) / seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cost-people", default="", help="e.g. 1,3 (empty: skip)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--decode-only", action="store_true", help="only the VP8 720p30 decode cost"
    )
    args = parser.parse_args()
    decode = [decode_cost(max(args.seconds, 1)) for _ in range(3)]
    print(
        f"VP8 1280x720@30 decode, one person: {statistics.median(decode):.3f} cores "
        f"(median of 3 x {args.seconds:g} s of video, flat out)"
    )
    if args.decode_only:
        return
    from recfw.testing.redis import RedisServer

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with RedisServer() as server, tempfile.TemporaryDirectory() as tmp:
        await dispatch(server.url, args.jobs, args.repeats, args.consumers)
        people = [int(p) for p in args.cost_people.split(",") if p.strip()]
        await latency_and_cost(server.url, args.runs, people, args.seconds, Path(tmp))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
