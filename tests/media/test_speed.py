"""x264's preset steps down when a live recording's encoder cannot keep up, and back up.

Three layers: the governor's rule (pure, on a virtual clock), the built-in
streams' encoder hand-over (files decoded: every picture, a keyframe at each
switch, the x264 settings each part was encoded with), and the recorder
(a test hook makes encoding slow at the configured preset only).
"""

from __future__ import annotations

import io
import logging
import re
import subprocess
import time
from typing import Any

import av
import numpy as np
import pytest
from recfw.encoding import EncodedStream, OutputFormat
from recfw.media import CompositeRecorder
from recfw.media.speed import SpeedGovernor
from recfw.plugins.encoders import speed_ladder

from .analysis import decode
from .conftest import ENCODERS, synthetic

FPS = 30


# --- the rule -------------------------------------------------------------------


def run(governor: SpeedGovernor, seconds: float, dropped, t0: float = 0.0) -> float:
    """Feed ``seconds`` of frames from ``t0``; ``dropped(t)`` says which were dropped."""
    n0 = round(t0 * FPS)
    for n in range(n0, n0 + round(seconds * FPS)):
        governor.observe(n / FPS, dropped(n / FPS))
    return t0 + seconds


def test_steps_down_once_per_hold_and_back_up_after_quiet():
    g = SpeedGovernor(3, down_hold=1.0, up_after=10.0)
    t = run(g, 2.5, lambda t: True)  # dropping all along
    assert g.changes == [(0.0, 1), (1.0, 2)]  # one step per second, never past the last
    t = run(g, 9.9, lambda t: False, t)
    assert g.step == 2  # not yet 10 s quiet
    t = run(g, 0.2, lambda t: False, t)
    assert [s for _, s in g.changes] == [1, 2, 1]
    assert g.changes[-1][0] == pytest.approx(2.5 - 1 / FPS + 10.0, abs=1 / FPS)
    run(g, 10.1, lambda t: False, t)
    assert g.step == 0 and [s for _, s in g.changes] == [1, 2, 1, 0]


def test_see_sawing_doubles_the_wait_before_stepping_up():
    g = SpeedGovernor(2, down_hold=1.0, up_after=4.0, max_up_after=10.0)
    t = run(g, 0.1, lambda t: True)
    assert g.step == 1
    t = run(g, 4.1, lambda t: False, t)
    assert g.step == 0  # quiet: back up
    t = run(g, 0.1, lambda t: True, t)  # ... too early: dropping again at once
    assert g.step == 1 and g.up_after == 8.0
    t = run(g, 7.9, lambda t: False, t)
    assert g.step == 1  # waits the doubled time
    t = run(g, 0.2, lambda t: False, t)
    assert g.step == 0
    t = run(g, 0.1, lambda t: True, t)
    run(g, 0.1, lambda t: True, t)
    assert g.up_after == 10.0  # capped


def test_one_step_means_nothing_to_choose():
    g = SpeedGovernor(1)
    run(g, 5, lambda t: True)
    assert g.changes == [] and g.step == 0


def test_the_ladder_goes_from_the_configured_preset_to_ultrafast():
    assert speed_ladder("veryfast") == ("veryfast", "superfast", "ultrafast")
    assert speed_ladder("medium") == ("medium", "veryfast", "superfast", "ultrafast")
    assert speed_ladder("superfast") == ("superfast", "ultrafast")
    assert speed_ladder("ultrafast") == ("ultrafast",)


# --- the hand-over in the built-in streams ----------------------------------------------


def x264_settings(data: bytes) -> list[dict[str, str]]:
    """The settings x264 writes into its first picture (an SEI), for every encoder in ``data``."""
    found = re.findall(rb"x264 - core .*? options: ([^\x00]*)", data)
    return [dict(kv.split("=", 1) for kv in s.decode().split() if "=" in kv) for s in found]


@pytest.mark.parametrize("name", ["mkv", "mp4"])
@pytest.mark.parametrize("preset", ["veryfast", "medium"])
def test_a_stream_switches_presets_at_keyframes_and_stays_one_decodable_stream(
    name, preset, tmp_path
):
    fmt = OutputFormat(320, 180, FPS)
    path = tmp_path / f"steps.{name}"
    noise = np.random.default_rng(7).integers(0, 255, (180, 320, 3), np.uint8)
    with open(path, "wb") as out:
        stream = ENCODERS[name].open(out, fmt, {"preset": preset})
        stream.prefer_low_latency()
        ladder = stream.speed_steps()
        assert ladder == speed_ladder(preset)
        plan = {20: len(ladder) - 2, 35: len(ladder) - 1, 55: 0}  # down, down, up
        for n in range(75):
            if n in plan:
                assert stream.set_speed(plan[n])
                assert stream.speed == plan[n]
            frame = av.VideoFrame.from_ndarray(np.roll(noise, 3 * n, axis=1), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = n, fmt.video_time_base
            stream.write_video(frame)
        stream.close()
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 20, 35, 55]
    d = decode(path)
    assert len(d.video_times) == 75 and np.allclose(np.diff(d.video_times), 1 / FPS, atol=0.0011)
    # FFmpeg decodes it without a complaint ...
    check = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0 and check.stderr == "", check.stderr
    # ... and each part was encoded with its preset (x264 says so in its first picture),
    # all with the same header settings (one set of parameter sets for the whole file).
    parts = x264_settings(path.read_bytes())
    subme = {"ultrafast": "0", "superfast": "1", "veryfast": "2", "medium": "7"}
    expected = [ladder[0], ladder[plan[20]], ladder[plan[35]], ladder[0]]
    assert [p["subme"] for p in parts] == [subme[p] for p in expected]
    shaping = ("ref", "cabac", "8x8dct", "weightp", "bframes", "chroma_qp_offset")
    assert len({tuple(p[k] for k in shaping) for p in parts}) == 1


def test_frame_threaded_streams_offer_no_steps():
    stream = ENCODERS["mkv"].open(io.BytesIO(), OutputFormat(320, 180, FPS), {})
    assert stream.speed_steps() == ("veryfast",)
    stream.close()


def test_a_preset_whose_parameter_sets_differ_is_refused(tmp_path, caplog):
    stream = ENCODERS["mkv"].open(io.BytesIO(), OutputFormat(320, 180, FPS), {})
    stream.prefer_low_latency()
    frame = av.VideoFrame(320, 180, "yuv420p")
    frame.pts, frame.time_base = 0, OutputFormat().video_time_base
    stream.write_video(frame)
    stream._pinned = "bframes=0:cabac=0"  # what another preset's headers would be
    assert not stream.set_speed(1)
    assert stream.speed == 0
    assert "not switching" in caplog.text
    frame.pts = 1
    stream.write_video(frame)  # the running encoder goes on
    stream.close()


# --- the recorder ----------------------------------------------------------------------


class PresetLoad:
    """A real encoder whose pictures take ``seconds`` (really: the thread sleeps) while its
    preset is ``slow_preset`` and ``loaded`` is set: a load that only a faster preset escapes."""

    def __init__(self, inner: Any, seconds: float, slow_presets: tuple[str, ...]):
        self.inner, self.seconds, self.slow_presets = inner, seconds, slow_presets
        self.loaded = True
        self.presets_seen: list[str] = []

    def open(self, output: Any, fmt: OutputFormat, options: Any) -> EncodedStream:
        stream = self.inner.open(output, fmt, options)
        load = self

        class Loaded:
            def prefer_low_latency(self) -> None:
                stream.prefer_low_latency()

            def speed_steps(self) -> tuple[str, ...]:
                return stream.speed_steps()

            def set_speed(self, step: int) -> bool:
                return stream.set_speed(step)

            def write_video(self, frame: av.VideoFrame) -> None:
                preset = stream.speed_steps()[stream.speed]
                if not load.presets_seen or load.presets_seen[-1] != preset:
                    load.presets_seen.append(preset)
                if load.loaded and preset in load.slow_presets:
                    time.sleep(load.seconds)
                stream.write_video(frame)

            def write_audio(self, frame: av.AudioFrame) -> None:
                stream.write_audio(frame)

            def close(self) -> None:
                stream.close()

        return Loaded()


async def test_a_recorder_behind_steps_the_preset_down_and_back_up(tmp_path, caplog):
    caplog.set_level(logging.INFO, "recfw.media")
    # 5 pictures a second at veryfast and superfast (30 are due): only ultrafast keeps up.
    encoder = PresetLoad(ENCODERS["mkv"], 0.2, ("veryfast", "superfast"))
    small = OutputFormat(320, 180, FPS, 48000, "stereo")
    path = tmp_path / "steps.mkv"
    with open(path, "wb") as out:
        rec = CompositeRecorder(encoder, out, small, realtime=True)
        rec.speed.down_hold, rec.speed.up_after = 0.5, 1.0
        rec.add(synthetic("p1", realtime=True, marker_interval_s=1.0, width=160, height=120))
        await rec.start()
        # Wait (as long as the machine needs) until it reached ultrafast, then lift the load.
        for _ in range(6000):
            if rec.speed.step == 2:
                break
            await rec.wait_until(rec.position + 0.1)
        assert rec.speed.step == 2, rec.speed.changes
        encoder.loaded = False
        for _ in range(6000):
            if rec.speed.step == 0:
                break
            await rec.wait_until(rec.position + 0.1)
        await rec.wait_until(rec.position + 0.5)
        stats = await rec.stop()
    # Down one step at a time, then back up one step at a time.
    assert [p for _, p in stats.preset_changes] == [
        "superfast",
        "ultrafast",
        "superfast",
        "veryfast",
    ]
    assert encoder.presets_seen == ["veryfast", "superfast", "ultrafast", "superfast", "veryfast"]
    times = [t for t, _ in stats.preset_changes]
    assert times[1] - times[0] >= 0.5 - 1e-9  # the hold between steps down
    assert times[2] - times[1] >= 1.0 - 1e-9 and times[3] - times[2] >= 1.0 - 1e-9
    assert stats.dropped_video_frames > 0
    # Logged: one warning with figures for the first step, info lines for the others.
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    stepped = [m for m in warnings if "x264 preset" in m]
    assert len(stepped) == 1 and "veryfast -> superfast" in stepped[0], warnings
    assert "x real time" in stepped[0] and "pictures queued" in stepped[0]
    infos = [r.getMessage() for r in caplog.records if "x264 preset" in r.getMessage()]
    assert len(infos) == 4
    # One stream: every picture that was encoded decodes, a keyframe where each step began.
    d = decode(path)
    assert len(d.video_times) == stats.video_frames - stats.dropped_video_frames
    with av.open(str(path)) as container:
        keys = [
            round(float(p.pts * p.time_base) * FPS)
            for p in container.demux(video=0)
            if p.size and p.is_keyframe
        ]
    encoded = [round(t * FPS) for t in d.video_times]
    for t, _ in stats.preset_changes:
        # the first picture encoded after the change is a keyframe
        first = min(f for f in encoded if f > round(t * FPS))
        assert first in keys, (t, keys)
