"""Record synthetic participants joining and leaving; decode the file and check it.

Real parts: the synthetic source, the compositor, the mkv/mp4 encoders (libx264,
Opus, AAC); files are checked by decoding them with PyAV.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from recfw.testing.media import truncate_copy

from .analysis import (
    beep_times,
    close,
    decode,
    flash_times,
    match,
    region_color,
    tile_region,
)
from .conftest import Step, record, synthetic

FRAME = 1 / 30
RED, GREEN, BLUE = (220, 40, 40), (40, 200, 60), (40, 80, 230)
# (pid, colour, picture size, fps, joins at, leaves at)
CAST = [
    ("p1", RED, (640, 480), 30, 0.0, 3.3),
    ("p2", GREEN, (320, 240), 15, 1.0, None),
    ("p3", BLUE, (1280, 720), 24, 2.0, None),
]
STOP = 4.5
MARKER = 2.0  # each participant flashes/beeps 2 s, 4 s, ... after joining


def _steps() -> list[Step]:
    steps = []
    for pid, color, (w, h), fps, join, leave in CAST:
        opts = dict(color=list(color), width=w, height=h, fps=fps, marker_interval_s=MARKER)
        steps.append(Step(join, pid, lambda pid=pid, o=opts: synthetic(pid, **o)))
        if leave is not None:
            steps.append(Step(leave, pid))
    return steps


@pytest.fixture(scope="module", params=["mkv", "mp4"])
def recording(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / f"meeting.{request.param}"
    stats = asyncio.run(record(path, request.param, _steps(), STOP))
    return request.param, path, stats, decode(path)


def present(t: float) -> list[tuple]:
    return [c for c in CAST if c[4] <= t + 1e-6 and (c[5] is None or t < c[5] - 1e-6)]


def test_streams_size_and_duration(recording):
    name, _, stats, d = recording
    assert (d.width, d.height) == (1280, 720)
    assert d.video_codec == "h264"
    assert d.audio_codec == ("opus" if name == "mkv" else "aac")
    assert stats.video_frames == round(STOP * 30) == len(d.video_times)
    assert stats.duration_s == pytest.approx(STOP)
    assert d.video_duration == pytest.approx(STOP, abs=FRAME)
    assert d.audio_duration == pytest.approx(STOP, abs=0.05)


def test_constant_rate_monotonic_pts(recording):
    _, _, _, d = recording
    times = np.array(d.video_times)
    steps = np.diff(times)
    assert np.all(steps > 0)
    assert np.allclose(steps, FRAME, atol=0.0011)  # mkv stores ms
    assert np.all(np.diff(d.audio_times) > 0)


def test_each_colour_in_its_tile_while_present(recording):
    _, _, _, d = recording
    checked = 0
    for t, frame in zip(d.video_times, d.frames, strict=True):
        t0 = t - d.video_times[0]
        # Skip frames next to a join/leave (the layout changes there) and flashes.
        if any(abs(t0 - c[4]) < 0.1 or (c[5] and abs(t0 - c[5]) < 0.1) for c in CAST):
            continue
        if (frame.min(axis=2) > 200).mean() > 0.05:
            continue
        people = present(t0)
        colours = [region_color(frame, tile_region(i, len(people), c[2])) for i, c in
                   enumerate(people)]  # fmt: skip
        for c, seen in zip(people, colours, strict=True):
            assert close(seen, c[1]), f"{c[0]} at {t0:.2f}s: tile shows {seen}, not {c[1]}"
        for gone in [c for c in CAST if c not in people]:
            assert not any(close(seen, gone[1]) for seen in colours), f"{gone[0]} at {t0:.2f}s"
        checked += 1
    assert checked > 100


def test_flash_and_beep_line_up(recording):
    _, _, _, d = recording
    expected = sorted(c[4] + k * MARKER for c in CAST for k in (1, 2)
                      if c[4] + k * MARKER < min(c[5] or STOP, STOP))  # fmt: skip
    flashes, beeps = flash_times(d), beep_times(d)
    v0 = d.video_times[0]
    assert [round(f - v0, 3) for f in flashes] == pytest.approx(expected, abs=FRAME + 0.001)
    assert len(beeps) == len(expected), (beeps, expected)
    for flash, beep in match(flashes, beeps, FRAME):
        assert beep is not None, f"no beep within 33 ms of the flash at {flash:.3f}s: {beeps}"


def test_truncated_file_decodes_up_to_the_cut(recording, tmp_path):
    name, path, _, full = recording
    cut = truncate_copy(path, 0.6, tmp_path / f"cut.{name}")
    d = decode(cut, tolerant=True)
    # The cut is at ~60% of the bytes; what decodes must reach near there in time
    # (mp4: up to the last complete 1 s fragment).
    assert len(d.video_times) >= 30
    reach = d.video_times[-1] - full.video_times[0]
    assert reach >= 0.6 * STOP - (1.1 if name == "mp4" else 0.6), reach
    # and what decodes are the full file's frames (the last, cut ones may be missing).
    assert set(d.video_times) <= set(full.video_times)
    assert len(d.video_times) >= full.video_times.index(d.video_times[-1]) - 2
