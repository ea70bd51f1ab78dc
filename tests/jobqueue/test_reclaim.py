"""A worker reclaims what dead workers left on the stream (XAUTOCLAIM), on a real Redis."""

from __future__ import annotations

import asyncio

import pytest
from recfw.queue.redisq import JOBS, JobQueue
from recfw.queue.settings import WorkerSettings
from recfw.queue.worker import QueueWorker

from .test_redisq import _job

SETTINGS = WorkerSettings(heartbeat=0.1, dead_after=0.3)


@pytest.fixture
async def queue(redis_server):
    q = JobQueue(redis_server.url)
    yield q
    await q.close()


def _worker(queue: JobQueue, name: str, tmp_path) -> QueueWorker:
    return QueueWorker(
        queue,
        name=name,
        capacity=1.0,
        spool_dir=tmp_path / name,
        settings=SETTINGS,
        plugins=None,  # reclaiming never touches plugins
    )


async def test_a_dead_worker_s_jobs_are_lost_requeued_or_given_back(queue, tmp_path):
    for job_id in ("recording", "never-started", "owner-alive", "finished"):
        await queue.enqueue(_job(job_id, room=job_id))
    taken = {}
    for consumer in ("dead", "dead", "alive", "dead"):
        entry_id, entry = await queue.read_job(consumer, 100)
        taken[entry.job_id] = entry_id
    await queue.report("recording", "taken", worker="dead")
    await queue.report("recording", "recording")
    await queue.report("owner-alive", "taken", worker="alive")
    await queue.report("finished", "taken", worker="dead")
    await queue.report("finished", "stored", location="file:///x.mkv", size=1)
    await queue.heartbeat("alive", {"capacity": 1, "load": 0.5, "jobs": []}, ttl=30)
    await asyncio.sleep(0.5)  # every entry is idle for longer than deadAfter now

    reclaimer = _worker(queue, "reclaimer", tmp_path)
    assert await reclaimer.reclaim() == 1

    states = await queue.last_states("recording")
    assert states[-1]["state"] == "lost"
    assert "worker dead died" in states[-1]["reason"] and states[-1]["reclaimedBy"] == "reclaimer"
    # Never started: back on the stream for any worker; finished: simply removed.
    again = await queue.read_job("someone", 100)
    assert again is not None and again[1].job_id == "never-started"
    assert (await queue.last_states("finished"))[-1]["state"] == "stored"
    # The job of a live owner went back to it, untouched.
    pending = await queue.redis.xpending_range(JOBS, "recorders", "-", "+", 10)
    owners = {p["message_id"]: p["consumer"] for p in pending}
    assert owners[taken["owner-alive"]] == "alive"
    assert taken["recording"] not in owners and taken["finished"] not in owners
    assert (await queue.last_states("owner-alive"))[-1]["state"] == "taken"


async def test_a_restarted_worker_reports_its_old_jobs_lost(queue, tmp_path):
    await queue.enqueue(_job("j1"))
    entry_id, _ = await queue.read_job("w1", 100)
    await queue.report("j1", "taken", worker="w1")
    await queue.report("j1", "recording")
    restarted = _worker(queue, "w1", tmp_path)
    await restarted._recover_own()
    states = await queue.last_states("j1")
    assert states[-1]["state"] == "lost" and "restarted" in states[-1]["reason"]
    assert await queue.backlog() == {"waiting": 0, "pending": 0}
