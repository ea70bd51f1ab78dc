"""The job stream on a real Redis: enqueue, admission give-back, heartbeats, XAUTOCLAIM."""

from __future__ import annotations

import asyncio

import pytest
from recfw.errors import RecfwError
from recfw.queue.redisq import JobQueue, QueuedJob
from recfw.testing.redis import RedisServer
from recfw.worker.job import RecordingJob


def _job(job_id: str, room: str = "standup", cost: float = 0.5) -> QueuedJob:
    job = RecordingJob(
        base_url="http://127.0.0.1:9",
        room=room,
        token="one-time-token",
        recording_id=job_id,
        spool_path=f"{room}-2026-11-30T18:00:00Z.mkv",
    )
    return QueuedJob(job_id, job, cost, people=2)


@pytest.fixture
async def queue(redis_server):
    q = JobQueue(redis_server.url)
    yield q
    await q.close()


async def test_a_job_goes_to_one_consumer_and_back_when_it_does_not_fit(queue):
    await queue.enqueue(_job("j1"))
    first = await queue.read_job("w1", 100)
    assert first is not None and first[1].job_id == "j1" and first[1].job.token == "one-time-token"
    assert await queue.read_job("w2", 100) is None  # delivered once, to w1
    # w1 has no room: the job goes back to the end of the stream, for another worker.
    await queue.requeue(first[0], first[1].passed("w1"))
    second = await queue.read_job("w2", 100)
    assert second is not None and second[1].passed_by == ("w1",)
    assert await queue.backlog() == {"waiting": 0, "pending": 1}
    await queue.done(second[0])
    assert await queue.backlog() == {"waiting": 0, "pending": 0}


async def test_states_and_commands_flow_per_job(queue):
    await queue.report("j1", "taken", worker="w1")
    await queue.report("j1", "recording")
    states = await queue.states("j1", "0-0", 100)
    assert [s["state"] for _, s in states] == ["taken", "recording"]
    assert (await queue.states("j1", states[-1][0], 50)) == []
    await queue.command("j1", {"type": "stop"})
    assert [c for _, c in await queue.commands("j1", "0-0", 100)] == [{"type": "stop"}]


async def test_heartbeats_expire_and_only_live_workers_are_listed(queue):
    await queue.heartbeat("w1", {"capacity": 1.6, "load": 0.5, "jobs": []}, ttl=0.3)
    await queue.heartbeat("w2", {"capacity": 1.0, "load": 0.0, "jobs": []}, ttl=30)
    assert [w["name"] for w in await queue.workers()] == ["w1", "w2"]
    await asyncio.sleep(0.5)
    assert not await queue.alive("w1") and await queue.alive("w2")
    assert [w["name"] for w in await queue.workers()] == ["w2"]


async def test_xautoclaim_finds_only_entries_nobody_touched(queue):
    await queue.enqueue(_job("alive"))
    await queue.enqueue(_job("dead"))
    a = await queue.read_job("w1", 100)
    d = await queue.read_job("w2", 100)
    assert a and d
    await asyncio.sleep(0.4)
    await queue.touch("w1", [a[0]])  # w1 is alive and says so; w2 said nothing
    claimed = await queue.autoclaim("w3", 300)
    assert [entry.job_id for _, entry in claimed if entry] == ["dead"]
    assert await queue.autoclaim("w3", 300) == []  # now w3's, and fresh


async def test_a_cancelled_job_is_marked(queue):
    entry_id = await queue.enqueue(_job("j1"))
    await queue.cancel("j1", entry_id)
    assert await queue.is_cancelled("j1")
    assert await queue.read_job("w1", 100) is None


async def test_an_unreachable_redis_is_a_clear_error_without_the_password():
    server = RedisServer(password="pw-hunter2").start()
    url = server.url
    server.stop()
    queue = JobQueue(url)
    try:
        with pytest.raises(RecfwError) as info:
            await queue.ping()
    finally:
        await queue.close()
    assert "recording queue redis://:********@127.0.0.1" in str(info.value)
    assert "pw-hunter2" not in str(info.value)


async def test_a_password_protected_redis(redis_server):
    with RedisServer(password="pw-hunter2") as server:
        queue = JobQueue(server.url)
        try:
            await queue.ping()
            await queue.enqueue(_job("j1"))
            assert (await queue.backlog())["waiting"] == 1
        finally:
            await queue.close()
