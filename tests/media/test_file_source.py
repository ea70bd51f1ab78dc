"""The ``file`` source reads on demand: bounded memory, paced only when real time."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from recfw.encoding import OutputFormat
from recfw.plugins.encoders import MkvEncoder
from recfw.plugins.sources import file as file_source
from recfw.plugins.sources.file import AHEAD, FileSource
from recfw.testing import media

from .analysis import close, decode, region_color, tile_region
from .conftest import Step, person, record, synthetic

FMT = OutputFormat(160, 120, 30, 48000, "stereo")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> object:
    """4 s of 160x120@30 video + 48 kHz stereo audio (Opus 20 ms frames) in mkv."""
    path = tmp_path_factory.mktemp("clip") / "clip.mkv"
    return media.encode_to_file(MkvEncoder(), media.steady_input(FMT, seconds=4.0), path)


def _until(predicate, seconds: float = 30.0) -> None:
    """Wait (in wall time, generously) for the reader thread to reach a state."""
    done = threading.Event()
    for _ in range(int(seconds / 0.01)):
        if predicate():
            done.set()
            break
        done.wait(0.01)
    assert done.is_set(), "the reader thread never got there"


@pytest.mark.parametrize("thread_first", [False, True], ids=["reads-first", "thread-first"])
async def test_reads_only_a_few_frames_ahead_of_its_reader(clip, thread_first):
    made = FileSource().create(person("f"), {"path": str(clip), "realtime": False})
    reader = made.video._reader
    try:
        await made.video.recv()
        if thread_first:  # (what a loaded machine may do) it fills both tracks before
            _until(lambda: reader.idle)  # the first audio frame is taken
        await made.audio.recv()
        # The thread decodes until each track holds AHEAD frames, then waits until one
        # is down to half: each track was read at most once since it began to wait.
        _until(lambda: reader.idle)
        held = {k: len(q) for k, q in reader.queues.items()}
        assert all(n >= AHEAD[k] - 1 for k, n in held.items()), held
        assert held["video"] <= AHEAD["video"] + 2 and held["audio"] <= AHEAD["audio"] + 8, held
        await asyncio.sleep(0.2)  # nobody reads: nothing more is decoded
        assert reader.idle
        assert {k: len(q) for k, q in reader.queues.items()} == held
        # Reading both tracks to the end never lets a queue grow past the bound.
        peak = dict.fromkeys(held, 0)
        counts = dict.fromkeys(held, 0)
        for kind in ("video", "audio") * 400:
            track = made.video if kind == "video" else made.audio
            if track.readyState != "live":
                continue
            try:
                await track.recv()
                counts[kind] += 1
            except Exception:  # noqa: BLE001 - MediaStreamError at the end
                continue
            for k, q in reader.queues.items():
                peak[k] = max(peak[k], len(q))
        assert counts["video"] == 4 * 30 - 1
        assert peak["video"] <= AHEAD["video"] + 2, peak
        # (audio frames are read at video's pace here, so audio may run further ahead)
        assert peak["audio"] <= 4 * 50, peak
    finally:
        made.stop()


async def test_a_track_nobody_reads_is_bounded(clip, monkeypatch):
    monkeypatch.setitem(file_source.MAX_HELD, "audio", 20)
    made = FileSource().create(person("f"), {"path": str(clip), "realtime": False})
    reader = made.video._reader
    try:
        for _ in range(90):  # 3 s of video, no audio read
            await made.video.recv()
        assert len(reader.queues["audio"]) <= 20
        assert reader.dropped["audio"] > 0
    finally:
        made.stop()


async def test_not_realtime_never_waits_and_realtime_is_paced(clip):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # a clock that jumps instead of waiting
        slept.append(seconds)
        now[0] += seconds

    now = [100.0]
    fast = FileSource().create(person("f"), {"path": str(clip), "realtime": False})
    assert fast.video._pace is None  # frames are handed over as soon as decoded
    paced = FileSource().create(person("p"), {"path": str(clip)})
    paced.video._pace.clock = lambda: now[0]
    paced.video._pace.sleep = sleep
    try:
        times = [(await paced.video.recv()).time for _ in range(60)]
    finally:
        fast.stop()
        paced.stop()
    # Real time: each frame waited until its timestamp on the (virtual) wall clock.
    assert sum(slept) == pytest.approx(times[-1] - times[0], abs=1e-6)
    assert now[0] - 100.0 == pytest.approx(59 / 30, abs=1e-3)


async def test_loop_keeps_timestamps_increasing(clip):
    made = FileSource().create(person("f"), {"path": str(clip), "realtime": False, "loop": True})
    try:
        times = [(await made.video.recv()).time for _ in range(4 * 30 * 2 + 10)]
        audio = [(await made.audio.recv()).time for _ in range(4 * 50 * 2 + 10)]
    finally:
        made.stop()
    assert np.all(np.diff(times) > 0) and times[-1] > 8.0
    assert np.all(np.diff(audio) > 0) and audio[-1] > 8.0


async def test_stop_ends_the_reader_thread(clip):
    made = FileSource().create(person("f"), {"path": str(clip), "realtime": False})
    await made.video.recv()
    thread = made.video._reader._thread
    assert thread is not None and thread.is_alive()
    made.stop()
    _until(lambda: not thread.is_alive())


async def test_non_realtime_recording_of_a_file(tmp_path):
    # A 2 s green participant recorded by recfw is the file another participant plays,
    # unpaced, in a virtual-clock recording.
    first = tmp_path / "green.mkv"
    await record(first, "mkv", [Step(0, "g", lambda: synthetic("g", color=[40, 200, 60]))], 2.0)
    path = tmp_path / "replay.mkv"
    opts = {"path": str(first), "realtime": False}
    await record(path, "mkv", [Step(0, "f", lambda: FileSource().create(person("f"), opts))], 1.9)
    d = decode(path)
    assert len(d.video_times) == 57
    r = tile_region(0, 1, (1280, 720))
    assert close(region_color(d.frames[30], r), (40, 200, 60), tol=45)
    assert np.abs(d.audio).max() > 0.05


def test_bad_realtime_option(clip):
    with pytest.raises(ValueError, match="'realtime'"):
        FileSource().create(person("f"), {"path": str(clip), "realtime": "yes"})
