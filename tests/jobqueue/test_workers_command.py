"""``recfw workers``: what it lists, and clear errors without a queue."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner
from recfw.commands.workers import workers_command
from recfw.queue.redisq import JobQueue


def test_without_a_queue_the_error_names_the_field(monkeypatch):
    monkeypatch.delenv("RECFW_QUEUE_URL", raising=False)
    result = CliRunner().invoke(workers_command, [])
    assert result.exit_code != 0
    assert "workers.queue: is not set" in str(result.exception)


def test_a_bad_queue_url_names_the_option_and_hides_the_password():
    result = CliRunner().invoke(workers_command, ["--queue", "http://:hunter2@h/0"])
    assert result.exit_code != 0
    assert "--queue" in str(result.exception) and "hunter2" not in str(result.exception)


def test_lists_live_workers_with_load_capacity_jobs_and_the_rule(redis_server):
    async def beat():
        queue = JobQueue(redis_server.url)
        job = {"jobId": "j1", "room": "standup", "cost": 0.54, "people": 1, "state": "recording"}
        await queue.heartbeat(
            "w1", {"host": "h", "pid": 1, "capacity": 1.6, "load": 0.54, "jobs": [job]}, ttl=60
        )
        await queue.close()

    asyncio.run(beat())
    result = CliRunner().invoke(workers_command, ["--queue", redis_server.url])
    assert result.exit_code == 0, result.output
    assert "admission: a worker takes a job when cost <= capacity - load" in result.output
    assert "w1 (h, pid 1): load 0.54 of capacity 1.60 cores, 1.06 free, 1 job(s)" in result.output
    assert "room standup: recording, 0.54 cores, 1 people (job j1)" in result.output
    shown = json.loads(
        CliRunner().invoke(workers_command, ["--queue", redis_server.url, "--json"]).output
    )
    assert shown["workers"][0]["name"] == "w1" and shown["waiting"] == 0
