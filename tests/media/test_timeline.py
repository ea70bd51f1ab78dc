"""Timestamp pathologies in, constant-30 fps monotonic output of the right length out.

Each participant's tracks are the real synthetic tracks with their timestamps
damaged on the way (a jump by hours, jitter, a gap), at 15/24/60 fps and with
44.1 kHz audio; the file is decoded with PyAV.
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
from aiortc import MediaStreamTrack

from .analysis import beep_times, decode, flash_times, match
from .conftest import Step, record, synthetic

FRAME = 1 / 30
STOP = 3.5
MARKER = 1.0


class Damaged(MediaStreamTrack):
    """Wraps a track and rewrites each frame's timestamp with ``damage(seconds) -> seconds``.

    ``drop(seconds)`` true: the frame is not delivered (a gap).
    """

    def __init__(self, inner, damage=lambda t: t, drop=lambda t: False, time_base=None):
        super().__init__()
        self.kind = inner.kind
        self.inner, self.damage, self.drop, self.tb = inner, damage, drop, time_base

    async def recv(self):
        while True:
            frame = await self.inner.recv()
            t = float(frame.pts * frame.time_base)
            if not self.drop(t):
                break
        tb = self.tb or frame.time_base
        frame.pts = round(self.damage(t) / tb)
        frame.time_base = tb
        return frame


def damaged(pid, damage=lambda t: t, drop=lambda t: False, video_tb=None, **opts):
    media = synthetic(pid, marker_interval_s=MARKER, **opts)
    media.video = Damaged(media.video, damage, drop, video_tb)
    media.audio = Damaged(media.audio, damage, drop)
    return media


HOURS = 3 * 3600.0
rng = random.Random(7)


def jump(t):  # the source's clock jumps forward by hours after 1.2 s
    return t + (HOURS if t >= 1.2 else 0.0)


def back(t):  # ... and this one jumps backwards by an hour (from a large start)
    return 7200.0 + t - (3600.0 if t >= 0.7 else 0.0)


def jitter(t):  # +-8 ms of timestamp noise
    return t + rng.uniform(-0.008, 0.008)


CASES = {
    "jump": lambda: damaged("p1", jump, color=[220, 40, 40], fps=15),
    "back": lambda: damaged("p2", back, color=[40, 80, 230], fps=60, video_tb=Fraction(1, 1000)),
    "jitter": lambda: damaged("p3", jitter, color=[40, 200, 60], fps=24, sample_rate=44100),
    "gap": lambda: damaged(
        "p4", drop=lambda t: 1.25 <= t < 1.75, color=[230, 210, 40], sample_rate=44100, channels=2
    ),
}


@pytest.fixture(scope="module")
def pathological(tmp_path_factory):
    import asyncio

    path = tmp_path_factory.mktemp("patho") / "patho.mkv"
    steps = [Step(0.0, pid, make) for pid, make in CASES.items()]
    stats = asyncio.run(record(path, "mkv", steps, STOP))
    return stats, decode(path)


def test_output_is_constant_30fps_monotonic_and_right_length(pathological):
    stats, d = pathological
    assert stats.video_frames == len(d.video_times) == round(STOP * 30)
    times = np.array(d.video_times)
    assert np.all(np.diff(times) > 0)
    assert np.allclose(np.diff(times), FRAME, atol=0.0011)
    assert d.audio_duration == pytest.approx(STOP, abs=0.05)
    assert times[-1] < STOP  # no hours-long file


def test_markers_still_line_up(pathological):
    _, d = pathological
    flashes, beeps = flash_times(d), beep_times(d)
    # The jumps are re-anchored, the gap is kept: every participant's marker
    # happens at 1 s, 2 s, 3 s of the recording.
    assert len(flashes) == 3, flashes
    for t, k in zip(flashes, (1, 2, 3), strict=True):
        assert t == pytest.approx(k, abs=FRAME + 0.001)
    for flash, beep in match(flashes, beeps, FRAME):
        assert beep is not None, f"no beep near the flash at {flash:.3f}: {beeps}"


def test_gap_is_silence_and_held_picture(pathological):
    _, d = pathological
    # While p4 is in its gap (1.25-1.75 s) its tile holds the last picture: the
    # bar in its tile does not move.
    from .analysis import tile_region

    r = tile_region(3, 4, (640, 480))
    idx = [i for i, t in enumerate(d.video_times) if 1.35 <= t <= 1.7]
    tiles = [d.frames[i][r.y : r.y + r.h, r.x : r.x + r.w].astype(int) for i in idx]
    assert all(np.abs(tiles[0] - t).mean() < 2 for t in tiles[1:])
    before = [d.frames[i][r.y : r.y + r.h, r.x : r.x + r.w].astype(int) for i in (20, 25)]
    assert np.abs(before[0] - before[1]).mean() > 2  # it does move outside the gap
