"""Lip sync by the sender's clock (recfw.media.lipsync) in the recorder, virtual clock.

The situation WebRTC creates: each received track's timestamps start at zero at
its own first frame, so the timestamps alone cannot say that the first picture
was captured 250 ms after the first sound. The sender's clock (its RTCP sender
reports, here a known mapping) can; the audio is never moved for it.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiortc import MediaStreamTrack
from recfw.media import CompositeRecorder
from recfw.sources import ParticipantMedia

from .analysis import beep_times, decode, flash_times, match
from .conftest import ENCODERS, person, synthetic

LATE = 0.25  # the video's first frame was captured this long after the audio's


class Rebased(MediaStreamTrack):
    """A track as a WebRTC receiver gives it: from ``skip`` seconds on, pts from zero."""

    def __init__(self, inner, skip: float = 0.0):
        super().__init__()
        self.kind = inner.kind
        self.inner, self.skip = inner, skip

    async def recv(self):
        while True:
            frame = await self.inner.recv()
            first = round(self.skip / frame.time_base)
            if frame.pts >= first:
                frame.pts -= first
                return frame


class KnownClock:
    """A CaptureClock: capture seconds = ``base`` + pts / ``rate``."""

    def __init__(self, base: float, rate: int):
        self.base, self.rate = base, rate

    def seconds(self, timestamp: int, since: int | None = None) -> float | None:
        return self.base + timestamp / self.rate


async def _record(tmp_path, name: str, clocks: bool):
    source = synthetic("s", marker_interval_s=1.0, width=320, height=240)
    media = ParticipantMedia(
        person("s"),
        video=Rebased(source.video, skip=LATE),
        audio=Rebased(source.audio),
        clocks={"audio": KnownClock(500.0, 48000), "video": KnownClock(500.0 + LATE, 90000)}
        if clocks
        else None,
    )
    path = tmp_path / name
    with open(path, "wb") as out:
        rec = CompositeRecorder(ENCODERS["mkv"], out, realtime=False)
        rec.add(media)
        await rec.start()
        await rec.wait_until(4.0)
        stats = await rec.stop()
    return decode(path), stats


def _offsets(d) -> list[float]:
    pairs = [(f, b) for f, b in match(flash_times(d), beep_times(d), 0.5) if b is not None]
    assert len(pairs) >= 3, pairs
    return [b - f for f, b in pairs]


async def test_the_senders_clock_puts_late_starting_video_with_its_sound(tmp_path):
    arrival, arrival_stats = await _record(tmp_path, "arrival.mkv", clocks=False)
    synced, synced_stats = await _record(tmp_path, "synced.mkv", clocks=True)
    # By timestamps alone the pictures come LATE too early (each flash before its beep)...
    assert all(abs(o - LATE) <= 1 / 30 + 1e-3 for o in _offsets(arrival)), _offsets(arrival)
    assert arrival_stats.synced_video_frames == 0
    # ... by the sender's clock every flash is on its beep (within one output frame).
    assert all(abs(o) <= 1 / 30 + 1e-3 for o in _offsets(synced)), _offsets(synced)
    assert synced_stats.synced_video_frames > 100
    # Only the video moved: the audio is the same, sample for sample.
    n = min(len(arrival.audio), len(synced.audio))
    assert n > 3.5 * 48000
    assert np.array_equal(arrival.audio[:n], synced.audio[:n])


class _Frame:
    def __init__(self, pts: int, samples: int = 0, sample_rate: int = 0):
        self.pts, self.samples, self.sample_rate = pts, samples, sample_rate


def test_live_pictures_wait_for_the_audio_captured_with_them_and_follow_its_stretch():
    from recfw.media.lipsync import HOLD, LipSync

    sync = LipSync({"audio": KnownClock(0.0, 48000), "video": KnownClock(0.0, 90000)}, "p")
    # Audio captured 0.00-0.10 s is placed at 5.00-5.10 s on the recording's timeline.
    for i in range(5):
        sync.audio_placed(_Frame(960 * i, 960, 48000), 5.0 + 0.02 * (i + 1))
    # A picture captured at 0.05 s goes with that audio ...
    placed = sync.video(_Frame(4500), now=5.2, arrival_time=5.3)
    assert len(placed) == 1 and placed[0][1] == pytest.approx(5.05)
    # ... one captured at 0.15 s (its audio not placed yet) waits for it.
    early = _Frame(13500)
    assert sync.video(early, now=5.2, arrival_time=5.3) == []
    # The audio of 0.10-0.20 s comes after a re-anchor 0.3 s later on the timeline:
    for i in range(5, 10):
        sync.audio_placed(_Frame(960 * i, 960, 48000), 5.3 + 0.02 * (i + 1))
    released = sync.release(now=5.25)
    assert [f for f, _ in released] == [early] and released[0][1] == pytest.approx(5.45)
    # A picture captured in the earlier stretch still goes by that stretch.
    assert sync.video(_Frame(8100), now=5.3, arrival_time=None)[0][1] == pytest.approx(5.09)
    # One whose audio never comes is let go after HOLD seconds, by the latest offset.
    late = _Frame(90000)  # captured at 1.0 s
    assert sync.video(late, now=5.3, arrival_time=None) == []
    assert sync.release(now=5.3 + HOLD / 2) == []
    (gone,) = sync.release(now=5.3 + HOLD)
    assert gone[0] is late and gone[1] == pytest.approx(1.0 + 5.3)
    assert sync.synced_frames == 4


def test_a_clock_that_puts_a_picture_far_from_now_is_not_followed():
    from recfw.media.lipsync import MAX_SHIFT, LipSync

    sync = LipSync({"audio": KnownClock(0.0, 48000), "video": KnownClock(0.0, 90000)}, "p")
    sync.audio_placed(_Frame(0, 960, 48000), 1.02)
    (placed,) = sync.video(_Frame(0), now=1.0 + MAX_SHIFT + 0.5, arrival_time=None, hold=False)
    assert placed[1] is None and sync.refused_frames == 1
