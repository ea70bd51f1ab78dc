"""The recorder composites the active grid, frame-exact on the virtual clock.

Six people, ``maxTiles`` 4: three tiles and "+3 more". Person 5 is silent until
2.0 s, then speaks: from the frame at 2.0 s on it has the cell of person 2 (the
least active shown), and nobody's hidden picture is scaled.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from recfw.media import CompositeRecorder
from recfw.media.activegrid import GridPolicy
from recfw.media.layout import fit, grid
from recfw.plugins.encoders import MkvEncoder
from recfw.rooms import Participant
from recfw.sources import ParticipantMedia
from recfw.testing.synthetic import identify, picture

W, H, FPS, SECONDS = 320, 240, 10, 4.0


class _Video(MediaStreamTrack):
    kind = "video"

    def __init__(self, index: int):
        super().__init__()
        self.frames = [
            av.VideoFrame.from_ndarray(picture(index, W, H, i, 10), format="rgb24").reformat(
                format="yuv420p"
            )
            for i in range(10)
        ]
        self.n = 0

    async def recv(self):
        if self.n >= SECONDS * FPS + FPS:
            raise MediaStreamError
        frame = self.frames[self.n % 10]
        frame.pts, frame.time_base = self.n, fractions.Fraction(1, FPS)
        self.n += 1
        return frame


class _Voice(MediaStreamTrack):
    """20 ms of silence at a time, a 440 Hz tone (-23 dBFS) from ``speak_at`` seconds on."""

    kind = "audio"

    def __init__(self, speak_at: float | None):
        super().__init__()
        self.speak_at = speak_at
        self.n = 0

    async def recv(self):
        if self.n >= (SECONDS + 1) * 50:
            raise MediaStreamError
        t0 = self.n * 960
        samples = np.zeros((1, 960), np.int16)
        if self.speak_at is not None and t0 / 48000 >= self.speak_at:
            t = (np.arange(960) + t0) / 48000
            samples[0] = (np.sin(2 * np.pi * 440 * t) * 3000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, t0
        frame.time_base = fractions.Fraction(1, 48000)
        self.n += 1
        return frame


def _person(index: int, speak_at: float | None = None) -> ParticipantMedia:
    return ParticipantMedia(Participant(f"p{index}"), video=_Video(index), audio=_Voice(speak_at))


async def test_the_speaker_takes_the_least_active_cell_at_the_exact_frame(tmp_path: Path):
    path = tmp_path / "grid.mkv"
    with open(path, "w+b") as output:
        rec = CompositeRecorder(
            MkvEncoder(),
            output,
            realtime=False,
            grid=GridPolicy(max_tiles=4, min_seconds=1.0),
        )
        for i in range(6):
            rec.add(_person(i, speak_at=2.0 if i == 5 else None))
        assert rec.shown == ["p0", "p1", "p2"] and rec.choice.overflow == 3
        await rec.start()
        await rec.wait_until(1.5)
        assert rec.shown == ["p0", "p1", "p2"]
        # only the shown are scaled (the compositor keeps no scaler for the others)
        assert set(rec._compositor.scalers) <= {"p0", "p1", "p2"}
        await rec.wait_until(3.0)
        assert rec.shown == ["p0", "p1", "p5"] and rec.choice.since["p5"] == 2.0
        await rec.wait_until(SECONDS)
        assert set(rec._compositor.scalers) <= {"p0", "p1", "p5"}
        stats = await rec.stop()
    assert stats.video_frames == SECONDS * 30

    cells = grid(4, 1280, 720)
    who = []
    labels = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            row = []
            for cell in cells[:3]:
                r = fit(W, H, cell)
                row.append(identify(rgb[r.y : r.y + r.h, r.x : r.x + r.w]))
            who.append(row)
            last = cells[3]
            labels.append(rgb[last.y : last.y + last.h, last.x : last.x + last.w])
    assert len(who) == SECONDS * 30
    switch = 2 * 30  # the frame at 2.0 s
    assert all(row == [0, 1, 2] for row in who[:switch]), who[:switch]
    assert all(row == [0, 1, 5] for row in who[switch:]), who[switch:]
    for label in labels:  # "+3 more": white text on the grey cell, nobody's picture
        assert identify(label) is None and (label.min(axis=2) > 200).mean() > 0.01
