"""``recfw run`` with ``[workers] queue``: recordings made by ``recfw worker --queue`` processes.

Real Redis (Debian's redis-server on loopback), real ``recfw run`` and worker
processes, headless participants with synthetic media, files decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from recfw.manager import load_plugins
from recfw.queue.cost import cost
from recfw.server.client import HeadlessParticipant
from worker.conftest import BLUE, RED, decoded_seconds, is_colour, synthetic, tile_colours

from .conftest import stored_path, until

GREEN = (30, 200, 30)
ONE_PERSON = cost(1)  # [server] video is 1280x720 at 30 fps by default


async def test_a_job_no_worker_can_take_fails_with_the_reason(deployment):
    d = await deployment(admission=3)
    # Room for 0.40 cores: it reads the job, sees it needs more, and gives it back.
    await d.worker("small", 0.4)
    plugins = load_plugins()
    url = f"{d.base}/standup"
    async with HeadlessParticipant(url, synthetic(plugins, "a", RED), name="A"):
        failed = await until(lambda: d.lines("recording failed:"), 120, "recording failed")
        assert d.events  # the receiver works
    text = failed[0]
    assert "no worker took the recording job within 3 s" in text, text
    assert f"it needs {ONE_PERSON:.2f} cores" in text and "small (0.40 of 0.40 cores free)" in text
    await until(lambda: d.events("recording.failed"), 60, "the recording.failed webhook")
    event = d.events("recording.failed")[0]
    assert "no worker took the recording job" in event["data"]["error"]
    assert not d.lines("stored ")
    # Nothing is left on the stream for a worker to start later.
    assert await d.queue.backlog() == {"waiting": 0, "pending": 0}
    assert "left for another" in "".join(d.worker_output["small"]), d.logs()


@pytest.mark.slow
async def test_three_rooms_recorded_by_two_workers_within_their_capacity(deployment):
    d = await deployment()
    # "big" has room for two one-person recordings, "small" for one.
    await d.worker("big", round(2 * ONE_PERSON + 0.05, 2))
    await d.worker("small", round(ONE_PERSON + 0.05, 2))
    plugins = load_plugins()
    colours = {"red": RED, "blue": BLUE, "green": GREEN}
    async with contextlib.AsyncExitStack() as stack:
        for room, colour in colours.items():
            await stack.enter_async_context(
                HeadlessParticipant(
                    f"{d.base}/{room}", synthetic(plugins, room, colour), name=room.title()
                )
            )

        async def three_jobs():
            workers = await d.queue.workers()
            jobs = {j["room"]: (w["name"], j["state"]) for w in workers for j in w["jobs"]}
            return jobs if sum(1 for _, s in jobs.values() if s == "recording") == 3 else None

        jobs = await until(three_jobs, 240, "three recordings on the workers")
        by_worker = [name for name, _ in jobs.values()]
        assert sorted(by_worker) == ["big", "big", "small"], jobs
        shown = await d.recfw("workers", "--config", "recfw.toml")
        assert "admission: a worker takes a job when cost <= capacity - load" in shown, shown
        assert f"load {2 * ONE_PERSON:.2f} of capacity {2 * ONE_PERSON + 0.05:.2f}" in shown
        assert f"load {ONE_PERSON:.2f} of capacity {ONE_PERSON + 0.05:.2f}" in shown, shown
        assert shown.count("    room ") == 3
        as_json = json.loads(await d.recfw("workers", "--config", "recfw.toml", "--json"))
        assert {w["name"]: len(w["jobs"]) for w in as_json["workers"]} == {"big": 2, "small": 1}
        await asyncio.sleep(3.0)
    stored = await until(
        lambda: len(d.lines("stored ")) == 3 and d.lines("stored "), 240, "three stored files"
    )
    for line in stored:
        room = line.rsplit(" (room ", 1)[1].rstrip(")")
        path = stored_path(line)
        assert path.exists(), line
        assert decoded_seconds(path)[0] > 1.0
        (colour,) = tile_colours(path, 1)
        assert is_colour(colour, colours[room]), (room, colour)
    await until(lambda: len(d.events("recording.finished")) == 3, 60, "recording.finished x3")
