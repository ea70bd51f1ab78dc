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
from worker.conftest import BLUE, RED, decoded_seconds, is_colour, synthetic, tile_colours

from .conftest import joined, stored_path, until

GREEN = (30, 200, 30)
ONE_PERSON = cost(1)  # [server] video is 1280x720 at 30 fps by default


async def test_a_job_no_worker_can_take_fails_with_the_reason(deployment):
    d = await deployment(admission=3)
    # Room for 0.40 cores: it reads the job, sees it needs more, and gives it back.
    await d.worker("small", 0.4)
    plugins = load_plugins()
    url = f"{d.base}/standup"
    async with joined(url, synthetic(plugins, "a", RED), "A"):
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
                joined(f"{d.base}/{room}", synthetic(plugins, room, colour), room.title())
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


@pytest.mark.slow
async def test_a_killed_worker_s_room_records_on_and_its_file_is_stored_when_it_returns(
    deployment,
):
    d = await deployment(admission=60)
    room_for_one = round(ONE_PERSON + 0.05, 2)
    await d.worker("a", room_for_one)
    await d.worker("b", room_for_one)
    plugins = load_plugins()

    async def recording_on(exclude: str | None = None):
        for w in await d.queue.workers():
            for job in w["jobs"]:
                if job["state"] == "recording" and w["name"] != exclude:
                    return w["name"], job["jobId"]
        return None

    async with joined(f"{d.base}/standup", synthetic(plugins, "a", RED), "A"):
        first_worker, first_job = await until(recording_on, 180, "the first recording")
        await asyncio.sleep(3.0)
        d.kill_worker(first_worker)  # the worker and its recorder: its machine died
        other, second_job = await until(
            lambda: recording_on(exclude=first_worker), 180, "the other worker recording on"
        )
        assert second_job != first_job
        failed = await until(lambda: d.events("recording.failed"), 60, "recording.failed")
        await asyncio.sleep(2.0)
    lost = failed[0]["data"]
    assert lost["recordingId"] == first_job, failed
    assert "the recorder died" in lost["error"] and first_worker in lost["error"], lost
    assert lost["keptAt"].endswith(".mkv") and f"spool-{first_worker}" in lost["keptAt"]
    # The second part is stored as usual, under a new name (a new start time).
    (line,) = await until(lambda: d.lines("stored "), 180, "the second part stored")
    second = stored_path(line)
    assert second.name != lost["filename"] and decoded_seconds(second)[0] > 1.0
    finished = await until(
        lambda: [e["data"]["recordingId"] for e in d.events("recording.finished")],
        60,
        "recording.finished of the second part",
    )
    assert finished[0] == second_job, finished
    # The dead worker comes back: it stores the file its killed recorder left.
    await d.worker(first_worker, room_for_one)

    def first_stored():
        return [e for e in d.events("recording.finished") if e["data"]["recordingId"] == first_job]

    (event,) = await until(first_stored, 120, "the lost part stored by its worker")
    first = d.folder / "recordings" / event["data"]["filename"]
    assert first.exists(), event
    video, audio = decoded_seconds(first)
    assert video > 1.0 and audio > 1.0, (video, audio)
    # Cut short after a few seconds: its first pictures may be the placeholder of a
    # tile still waiting for its first frame; its last ones show the person.
    assert is_colour(_last_frames_colour(first), RED)


def _last_frames_colour(path) -> tuple[float, ...]:
    """Mean RGB of the middle of the canvas over the last 10 decoded pictures."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        frames = []
        try:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24")[260:460, 440:840])
                frames = frames[-10:]
        except av.error.FFmpegError:  # the cut end of a killed recording
            pass
    assert frames, f"no picture decodes from {path}"
    return tuple(float(c) for c in np.stack(frames).reshape(-1, 3).mean(axis=0))
