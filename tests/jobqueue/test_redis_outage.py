"""Redis goes down while a worker finishes and stores a file: the reports are not lost.

Real Redis (killed and started again, empty: persistence is off), real ``recfw run``
and ``recfw worker --queue`` processes, a headless participant, the control plane's
own SQLite database read back.
"""

from __future__ import annotations

import asyncio
import os
import signal

from recfw.config import parse_config
from recfw.control import Database, Recording
from recfw.manager import load_plugins
from recfw.queue.settings import WorkerSettings
from recfw.queue.worker import QueueWorker
from worker.conftest import RED, decoded_seconds, synthetic

from .conftest import joined, until
from .test_queued_recording import ONE_PERSON
from .test_redisq import _job


async def test_a_store_reported_while_redis_was_down_is_stored_once(deployment, redis_server):
    d = await deployment()
    await d.worker("w", round(ONE_PERSON + 0.05, 2))
    plugins = load_plugins()

    async def recording_job():
        for w in await d.queue.workers():
            for job in w["jobs"]:
                if job["state"] == "recording":
                    return job["jobId"]
        return None

    async with joined(f"{d.base}/standup", synthetic(plugins, "a", RED), "A"):
        job_id = await until(recording_job, 180, "the recording on the worker")
        await asyncio.sleep(2.0)
    # The person left: the room server tells the worker to stop. Once the worker has
    # passed that on to its recorder, it is frozen (SIGSTOP) and Redis dies; the worker
    # thaws and finishes, stores and reports while Redis is down.
    told = f"job {job_id}: the room server asked to stop"
    await until(lambda: told in "".join(d.worker_output["w"]), 60, "the stop", step=0.02)
    worker = d.workers["w"]
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        redis_server.kill()
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    folder = d.folder / "recordings"
    files = await until(lambda: list(folder.glob("*.mkv")), 90, "the file in the destination")
    reports = d.folder / "spool-w" / ".reports"

    def kept_on_disk():
        return any('"stored"' in f.read_text() for f in reports.glob("*.jsonl"))

    await until(kept_on_disk, 60, "the worker keeping its stored report on disk")
    assert "could not report stopped" in "".join(d.worker_output["w"]), d.logs()
    # Long enough for the worker's background uploader (every 5 s) to look at the row,
    # still "recording" with its spool file gone: it is the worker's job, not a crash.
    await asyncio.sleep(6.0)
    assert not d.events("recording.finished") and not d.events("recording.failed")
    assert not d.lines("stored ")

    redis_server.start()  # back, empty
    await until(lambda: d.lines("stored "), 90, "the room server seeing the file stored")
    finished = await until(lambda: d.events("recording.finished"), 60, "recording.finished")
    await asyncio.sleep(3.0)  # a second delivery (or a late failure) would come now
    assert len(d.events("recording.finished")) == 1, d.events("recording.finished")
    assert not d.events("recording.failed"), [e["data"] for e in d.events("recording.failed")]
    data = finished[0]["data"]
    assert data["recordingId"] == job_id and data["filename"] == files[0].name
    video, audio = decoded_seconds(files[0])
    assert video > 1.0 and audio > 1.0, (video, audio)

    config = parse_config({"server": {"dataDir": str(d.folder / ".recfw")}}, environ={})
    db = Database.open(config, d.env, upgrade=False)
    try:
        with db.session(readonly=True) as s:
            row = s.get(Recording, job_id)
            assert row is not None and row.status == "stored", row and row.status
            assert row.location and row.location.endswith(files[0].name)
    finally:
        db.engine.dispose()
    assert not list(reports.glob("*")), "reports all sent"


async def test_kept_reports_are_sent_in_order_after_a_restart(redis_server, tmp_path):
    """A worker that could not report (Redis down) sends what it kept when it runs again,
    before it looks for its own unfinished jobs (which it would otherwise call lost)."""
    from recfw.queue.redisq import JobQueue

    queue = JobQueue(redis_server.url)
    try:
        await queue.enqueue(_job("j1"))
        entry_id, _ = await queue.read_job("w", 100)
        settings = WorkerSettings(heartbeat=0.1, dead_after=0.3)
        worker = QueueWorker(
            queue, name="w", capacity=1.0, spool_dir=tmp_path, settings=settings, plugins=None
        )
        redis_server.kill()
        await worker._say("j1", "stopped", size=10)
        await worker._say("j1", "stored", location="file:///x.mkv", size=10)
        worker.reports.set_entry("j1", entry_id)
        assert worker.reports.jobs() == ["j1"]
        redis_server.start()  # empty: the entry is gone with it; re-create it
        await queue.enqueue(_job("j1"))
        entry_id, _ = await queue.read_job("w", 100)
        worker.reports.set_entry("j1", entry_id)
        stop = asyncio.Event()
        running = asyncio.ensure_future(worker.run(stop))

        async def reported():
            states = [s.get("state") for s in await queue.last_states("j1")]
            return states if "stored" in states else None

        states = await until(reported, 30, "the kept states")
        stop.set()
        await asyncio.wait_for(running, 30)
        assert states == ["stopped", "stored"], states  # in order, and never "lost"
        assert await queue.backlog() == {"waiting": 0, "pending": 0}
        assert worker.reports.jobs() == []
    finally:
        await queue.close()
