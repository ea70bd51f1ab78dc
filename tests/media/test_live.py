"""The wall-clock path (realtime=True) with self-pacing sources, and the file source."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from recfw.plugins.sources.file import FileSource

from .analysis import beep_times, close, decode, flash_times, match, region_color, tile_region
from .conftest import ENCODERS, Step, person, record, synthetic

FRAME = 1 / 30


async def test_realtime_recording_follows_the_wall_clock(tmp_path):
    path = tmp_path / "live.mkv"
    opts = dict(realtime=True, marker_interval_s=1.0, color=[220, 40, 40])
    clock: dict[str, float] = {}
    stats = await record(
        path,
        "mkv",
        [Step(0.0, "p1", lambda: synthetic("p1", **opts))],
        stop_at=2.2,
        realtime=True,
        clock=clock,
    )
    elapsed = clock["stopping"] - clock["started"]
    d = decode(path)
    # The output is as long as the wall-clock time recorded (give or take the latency).
    assert stats.duration_s == pytest.approx(elapsed, abs=0.1)
    # Every picture not dropped (a loaded machine's encoder may fall behind: then
    # pictures are dropped, never audio), on the 30 fps grid.
    assert len(d.video_times) == stats.video_frames - stats.dropped_video_frames
    steps = np.diff(d.video_times) / FRAME
    assert np.allclose(steps, np.round(steps), atol=0.04) and steps.min() > 0.5
    assert d.audio_duration == pytest.approx(stats.duration_s, abs=0.05)
    flashes, beeps = flash_times(d), beep_times(d)
    assert len(beeps) >= 1 and len(flashes) <= len(beeps), (flashes, beeps)
    if not stats.dropped_video_frames:
        assert len(flashes) == len(beeps), (flashes, beeps)
    if stats.dropped_audio_s == 0:  # (a starved machine: the output fell 5 s behind)
        for flash, beep in match(flashes, beeps, FRAME):
            assert beep is not None, f"no beep near the flash at {flash:.3f}: {beeps}"


async def test_file_source_plays_a_recording_as_a_participant(tmp_path):
    # A 2 s green participant recorded by recfw is the file another participant plays.
    first = tmp_path / "green.mkv"
    await record(first, "mkv", [Step(0, "g", lambda: synthetic("g", color=[40, 200, 60]))], 2.0)
    path = tmp_path / "replay.mp4"
    await record(
        path,
        "mp4",
        [Step(0, "f", lambda: FileSource().create(person("f"), {"path": str(first)}))],
        1.5,
    )
    d = decode(path)
    assert d.width == 1280 and len(d.video_times) == 45
    r = tile_region(0, 1, (1280, 720))
    assert close(region_color(d.frames[30], r), (40, 200, 60), tol=45)
    assert np.abs(d.audio).max() > 0.05  # the tone came through


def test_file_source_bad_options(tmp_path):
    with pytest.raises(ValueError, match="'path'"):
        FileSource().create(person("f"), {"path": str(tmp_path / "missing.mkv")})
    with pytest.raises(ValueError, match="unknown"):
        FileSource().create(person("f"), {"path": "x", "speed": 2})


def test_encoder_options_are_checked():
    import io

    from recfw.encoding import OutputFormat

    for bad, field in (({"preset": "warp"}, "preset"), ({"crf": 99}, "crf"), ({"gop": 0}, "gop"),
                       ({"bitrate": "fast"}, "bitrate"), ({"colour": 1}, "unknown")):  # fmt: skip
        with pytest.raises(ValueError, match=field):
            ENCODERS["mkv"].open(io.BytesIO(), OutputFormat(), bad)


def test_synthetic_options_are_checked():
    with pytest.raises(ValueError, match="'width'"):
        synthetic("p", width=3)
    with pytest.raises(ValueError, match="'color'"):
        synthetic("p", color="red")
    with pytest.raises(ValueError, match="unknown"):
        synthetic("p", size=3)


async def test_realtime_source_clock_jump_and_jitter(tmp_path):
    from .test_timeline import Damaged

    def jump(t):  # hours forward after 0.8 s, with +-8 ms of jitter
        return t + (3 * 3600.0 if t >= 0.8 else 0.0) + ((hash(round(t, 3)) % 17) - 8) / 1000

    def make():
        media = synthetic("p1", realtime=True, marker_interval_s=1.0, color=[40, 80, 230])
        media.video = Damaged(media.video, jump)
        media.audio = Damaged(media.audio, jump)
        return media

    path = tmp_path / "live-jump.mp4"
    clock: dict[str, float] = {}
    stats = await record(
        path, "mp4", [Step(0.0, "p1", make)], stop_at=2.2, realtime=True, clock=clock
    )
    d = decode(path)
    # Not hours: as long as the wall-clock time it recorded (however long that took).
    assert stats.duration_s < clock["stopping"] - clock["started"] + 0.5
    assert len(d.video_times) == stats.video_frames - stats.dropped_video_frames
    steps = np.diff(d.video_times) / FRAME
    assert np.allclose(steps, np.round(steps), atol=0.04) and steps.min() > 0.5
    assert d.audio_duration == pytest.approx(stats.duration_s, abs=0.05)
    flashes, beeps = flash_times(d), beep_times(d)
    # Both beeps (audio is never dropped unless the output falls max_queued_audio
    # behind); both flashes unless a flash's pictures were dropped because the
    # encoder fell behind on a loaded machine (stats say so: then at least one).
    if stats.dropped_audio_s == 0:
        assert len(beeps) == 2, beeps
    assert len(flashes) == 2 or (stats.dropped_video_frames and len(flashes) >= 1), (
        flashes,
        beeps,
        stats,
    )
    for flash, beep in match(flashes, beeps, FRAME):
        assert beep is not None, f"no beep near the flash at {flash:.3f}: {beeps}"


async def test_bad_encoder_options_fail_start_and_release_the_tracks():
    import io

    from recfw.media import CompositeRecorder

    rec = CompositeRecorder(ENCODERS["mp4"], io.BytesIO(), options={"crf": 99}, realtime=False)
    media = synthetic("p1")
    rec.add(media)
    with pytest.raises(ValueError, match="crf"):
        await rec.start()
    with pytest.raises(RuntimeError, match="never started"):
        await rec.stop()
    await asyncio.sleep(0)
    assert all(t.done() for e in rec._people.values() for t in e.tasks)
