"""The timeline's placement rules, driven frame by frame (no encoding)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from recfw.media.timeline import AudioTrackBuffer, TimingPolicy, VideoTrackBuffer


def audio_frame(pts: int, rate: int = 48000, n: int = 960, value: float = 0.5) -> av.AudioFrame:
    data = np.full((1, n), int(value * 32767), np.int16)
    f = av.AudioFrame.from_ndarray(data, format="s16", layout="mono")
    f.sample_rate, f.pts, f.time_base = rate, pts, Fraction(1, rate)
    return f


def video_frame(pts: int, tb: Fraction = Fraction(1, 90000)) -> av.VideoFrame:
    f = av.VideoFrame(32, 32, "yuv420p")
    f.pts, f.time_base = pts, tb
    return f


def test_virtual_video_keeps_gaps_and_reanchors_jumps():
    buf = VideoTrackBuffer(TimingPolicy(realtime=False), "v")
    times = [buf.push(video_frame(i * 3000), 0.0, 1.0) for i in range(30)]  # 30 fps from 1.0 s
    assert times[0] == pytest.approx(1.0) and times[-1] == pytest.approx(1.0 + 29 / 30)
    # a 2 s gap is kept
    assert buf.push(video_frame(30 * 3000 + 180000), 0, 1) == pytest.approx(3.0 + 29 / 30 + 1 / 30)
    last = buf.frames[-1][0]
    # a jump of hours forward continues one frame later
    assert buf.push(video_frame(10**12), 0, 1) == pytest.approx(last + 1 / 30)
    last = buf.frames[-1][0]
    # ... and so does a jump backwards
    assert buf.push(video_frame(5), 0, 1) == pytest.approx(last + 1 / 30)
    assert buf.anchor.reanchors == 2


def test_picture_is_held_until_the_next_frame():
    buf = VideoTrackBuffer(TimingPolicy(realtime=False), "v")
    a, b = video_frame(0), video_frame(90000)  # at 0 s and 1 s
    buf.push(a, 0, 0)
    buf.push(b, 0, 0)
    assert buf.picture_at(0.5) is a and buf.ready(0.5)
    assert buf.picture_at(0.99) is a
    assert buf.picture_at(1.0) is b and not buf.ready(1.0)


def test_audio_jitter_is_laid_end_to_end_and_gaps_are_silence():
    buf = AudioTrackBuffer(TimingPolicy(realtime=False), "a", 48000, "stereo")
    rng = np.random.default_rng(1)
    for i in range(50):  # 1 s of 20 ms frames with +-5 ms timestamp jitter
        buf.push(audio_frame(i * 960 + int(rng.integers(-240, 240))), 0, 0)
    assert buf.written_end == pytest.approx(48000, abs=64)  # resampler latency at most
    buf.push(audio_frame(48000 + 24000), 0, 0)  # after a 0.5 s gap
    out = buf.read(0, 96000)
    assert out.shape == (96000, 2)
    assert np.all(np.abs(out[1000:47000]) > 0.4)  # continuous, no holes from the jitter
    assert np.all(out[49000:71000] == 0)  # the gap is silence
    assert np.all(np.abs(out[72000 + 100 : 72000 + 900]) > 0.4)  # the frame after the gap


def test_audio_resampled_from_44_1k():
    buf = AudioTrackBuffer(TimingPolicy(realtime=False), "a", 48000, "mono")
    for i in range(100):  # 2 s at 44.1 kHz
        buf.push(audio_frame(i * 882, rate=44100, n=882), 0, 0)
    assert buf.written_end == pytest.approx(96000, abs=64)


def test_realtime_drift_is_pulled_back_to_the_wall_clock():
    pol = TimingPolicy(realtime=True)
    buf = AudioTrackBuffer(pol, "a", 48000, "mono")
    vbuf = VideoTrackBuffer(pol, "v")
    now = 5.0
    for i in range(3000):  # 60 s of a source whose clock runs 2% slow
        now += 0.020 * 1.02
        t = buf.push(audio_frame(i * 960), now, now)
        assert abs(t - now) <= pol.max_drift + 0.021
        assert abs(buf.written_end / 48000 - now) <= pol.max_drift + 0.05
        tv = vbuf.push(video_frame(i * 1800), now, now)  # 50 fps video on the same clock
        assert abs(tv - now) <= pol.max_drift + 0.021
    assert buf.anchor.reanchors >= 3


def test_a_live_backlog_is_bounded():
    from recfw.media.timeline import MAX_QUEUED_FRAMES

    buf = VideoTrackBuffer(TimingPolicy(realtime=True), "v")
    for i in range(MAX_QUEUED_FRAMES + 50):  # nobody reads: the output is stuck
        buf.push(video_frame(i * 3000), i / 30, i / 30)
    assert len(buf.frames) == MAX_QUEUED_FRAMES and buf.dropped == 50


def untimed(n: int = 960) -> av.AudioFrame:
    f = audio_frame(0, n=n)
    f.pts = None
    return f


@pytest.mark.parametrize("speed", [3.0, 1.0, 0.9])
def test_live_audio_without_timestamps_stays_on_the_wall_clock(speed):
    pol = TimingPolicy(realtime=True)
    buf = AudioTrackBuffer(pol, "a", 48000, "mono")
    now, read_to = 2.0, 0
    for _ in range(round(10 / 0.020 * speed)):  # 10 s of 20 ms frames arriving at `speed`x
        now += 0.020 / speed
        buf.push(untimed(), now, now)
        s1 = round((now - 0.3) * 48000)  # the output reads 0.3 s behind
        if s1 > read_to:
            buf.read(read_to, s1)
            read_to = s1
        assert buf.written_end / 48000 <= now + pol.jitter + 0.021
        assert buf.written_end / 48000 >= now - pol.max_drift - 0.021
        assert buf.queued <= (0.3 + pol.jitter + 0.041) * 48000
    if speed == 1.0:  # in time: laid end to end, nothing dropped or moved
        assert buf.overlapped == 0 and buf.anchor.reanchors == 0 and buf.dropped == 0
    elif speed > 1:  # 30 s delivered in 10 s: the 20 s that does not fit is dropped
        assert buf.overlapped / 48000 == pytest.approx(10 * (speed - 1), abs=0.1)
    else:  # slow: pulled forward to the wall clock now and then
        assert buf.anchor.reanchors >= 3


def test_live_audio_backlog_is_bounded_and_stays_in_place(caplog):
    pol = TimingPolicy(realtime=True, max_queued_audio=2.0)
    buf = AudioTrackBuffer(pol, "p/audio", 48000, "mono")
    for i in range(500):  # 10 s on time, and nobody reads: the output is stuck
        now = 1.0 + i * 0.020
        buf.push(audio_frame(i * 960, value=0.5 if i % 50 else -0.5), now, now)
        assert buf.queued <= 2.0 * 48000
    assert buf.written_end == 11 * 48000 and buf.dropped == 8 * 48000
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "p/audio" in warnings[0].getMessage()
    # What is kept is where it was placed: the marker frames (i % 50 == 0) at 1 s steps.
    out = buf.read(0, 11 * 48000)[:, 0]
    assert np.all(out[: 9 * 48000] == 0)
    for k in (9, 10):
        assert np.all(out[k * 48000 : k * 48000 + 960] < -0.4)
        assert np.all(out[k * 48000 + 960 : (k + 1) * 48000] > 0.4)


def test_virtual_audio_is_not_bounded():
    # The virtual clock throttles reading instead (READ_AHEAD): nothing is dropped here.
    buf = AudioTrackBuffer(TimingPolicy(realtime=False, max_queued_audio=2.0), "a", 48000, "mono")
    for i in range(500):
        buf.push(audio_frame(i * 960), 0, 0)
    assert buf.queued == 10 * 48000 and buf.dropped == 0
