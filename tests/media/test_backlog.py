"""Live recordings hold a bounded amount of audio when a track outruns the output.

Two ways audio piles up in a live (wall clock) recording: a source delivering
faster than real time (a clock that runs fast), and an encoder that falls
behind real time. Either way the track's buffer must stay bounded, the output
constant-rate and monotonic, and the audio that is played in its place.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from recfw.encoding import EncodedStream, OutputFormat
from recfw.media import CompositeRecorder, RecordingStats
from recfw.media.recorder import LATENCY, MAX_PICTURES_PENDING
from recfw.media.timeline import AudioTrackBuffer

from .analysis import beep_times, decode, flash_times, match
from .conftest import ENCODERS, synthetic

FRAME = 1 / 30
RATE = 48000


class FastAudio(MediaStreamTrack):
    """Another audio track's frames, ``speed`` times faster than real time.

    ``timestamps=False``: the frames carry no timestamps (laid end to end).
    """

    kind = "audio"

    def __init__(self, inner: MediaStreamTrack, speed: float, timestamps: bool):
        super().__init__()
        self.inner, self.speed, self.timestamps = inner, speed, timestamps
        self.start: float | None = None

    async def recv(self) -> av.AudioFrame:
        frame = await self.inner.recv()  # an unpaced source: at once
        t = float(frame.pts * frame.time_base)
        if self.start is None:
            self.start = time.monotonic()
        delay = self.start + t / self.speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if not self.timestamps:
            frame.pts = None
        return frame


class SlowEncoder:
    """A real encoder whose pictures take ``seconds`` each to encode until ``until``."""

    def __init__(self, inner: Any, seconds: float):
        self.inner, self.seconds = inner, seconds
        self.until = float("inf")  # time.monotonic() after which it is fast again

    def open(self, output: Any, fmt: OutputFormat, options: Any) -> EncodedStream:
        stream = self.inner.open(output, fmt, options)
        encoder = self

        class Slow:
            def write_video(self, frame: av.VideoFrame) -> None:
                if time.monotonic() < encoder.until:
                    time.sleep(encoder.seconds)
                stream.write_video(frame)

            def write_audio(self, frame: av.AudioFrame) -> None:
                stream.write_audio(frame)

            def close(self) -> None:
                stream.close()

        return Slow()


def held(buf: AudioTrackBuffer) -> int:
    """Samples the buffer holds (from its oldest chunk to the newest sample placed)."""
    return buf.written_end - buf.chunks[0][0] if buf.chunks else 0


async def watch(rec: CompositeRecorder, pid: str, seen: list[tuple[int, float]]) -> None:
    """Every 10 ms: the audio held and how far the output is behind the wall clock."""
    while True:
        buf = rec._people[pid].audio
        assert buf is not None
        seen.append((held(buf), rec.now() - rec.position))
        await asyncio.sleep(0.010)


async def live(
    rec: CompositeRecorder, pid: str, stop_at: float
) -> tuple[RecordingStats, list[tuple[int, float]]]:
    seen: list[tuple[int, float]] = []
    await rec.start()
    watcher = asyncio.get_running_loop().create_task(watch(rec, pid, seen))
    try:
        await rec.wait_until(stop_at)
    finally:
        watcher.cancel()
    return await rec.stop(), seen


def check_output(path, stats: RecordingStats) -> Any:
    """30 fps (less the pictures dropped because the encoder was behind: the last one is
    held), monotonic, audio as long as the video; returns the decoded file."""
    d = decode(path)
    assert len(d.video_times) == stats.video_frames - stats.dropped_video_frames > 0
    assert np.all(np.diff(d.video_times) > 0)
    steps = np.diff(d.video_times) / FRAME
    assert np.allclose(steps, np.round(steps), atol=0.04)  # on the 30 fps grid
    if not stats.dropped_video_frames:
        assert np.allclose(np.diff(d.video_times), FRAME, atol=0.0011)
    assert np.all(np.diff(d.audio_times) > 0)
    assert d.audio_duration == pytest.approx(stats.duration_s, abs=0.05)
    return d


@pytest.mark.parametrize("timestamps", [True, False], ids=["timestamps", "no-timestamps"])
async def test_audio_three_times_faster_than_real_time(tmp_path, timestamps):
    media = synthetic("p1", realtime=True, marker_interval_s=0)
    tone = synthetic("p1", realtime=False, marker_interval_s=0).audio  # unpaced
    media.audio = FastAudio(tone, 3.0, timestamps)
    path = tmp_path / "fast.mkv"
    with open(path, "wb") as out:
        # ultrafast: keeping up with the wall clock must not need a fast machine
        rec = CompositeRecorder(
            ENCODERS["mkv"], out, options={"preset": "ultrafast"}, realtime=True
        )
        rec.add(media)
        stats, seen = await live(rec, "p1", 3.0)
    # The buffer holds no more than what the output has still to read up to the
    # wall clock, plus the jitter allowed on either side of "now" and a frame or
    # two: the surplus is not kept (it held 6 s after 3 s when it was kept). On a
    # machine that keeps up, "behind" is LATENCY; on a loaded one the output may
    # lag and the buffer legitimately holds what the output has still to read.
    slack = 2 * rec.policy.jitter + 0.05
    for samples, behind in seen:
        assert samples / RATE <= behind + slack, (samples / RATE, behind)
    d = check_output(path, stats)
    # The tone is played all along from when the track's first frame reached the
    # recorder (its time on the recording's clock, as observed: on a loaded machine
    # the reader may get its first turn later than the output's latency), no holes
    # (but the last 0.1 s: where the wall clock stood when stop() was called) ...
    assert media.audio.start is not None and rec._t0 is not None
    first = max(LATENCY, media.audio.start - rec._t0)
    a = d.audio[round((first + 0.1) * RATE) : -round(0.1 * RATE)]
    rms = np.sqrt(np.mean(a[: len(a) // 960 * 960].reshape(-1, 960) ** 2, axis=1))
    silent = np.count_nonzero(rms <= 0.03) * 960 / RATE
    # ... but what the recorder reports it dropped because the output fell more than
    # max_queued_audio behind real time (by design; a starved machine can get there).
    holes = 1 + np.count_nonzero(np.diff(np.flatnonzero(rms <= 0.03)) > 1)
    assert silent <= stats.dropped_audio_s + holes * 2 * 960 / RATE, (
        silent,
        stats.dropped_audio_s,
        stats.max_behind_s,
    )
    if stats.max_behind_s < rec.policy.max_queued_audio:
        assert stats.dropped_audio_s == 0 and silent == 0, (silent, stats)


async def test_encoder_behind_real_time_drops_pictures_and_keeps_all_audio(tmp_path, caplog):
    # The bounded queue between compositor and encoder: while the encoder cannot
    # keep up, pictures are dropped (the last one held), audio never waits behind
    # more than MAX_PICTURES_PENDING pictures, so none of it is lost.
    caplog.set_level(logging.WARNING, "recfw.media")
    encoder = SlowEncoder(ENCODERS["mkv"], 0.2)  # 5 pictures a second (30 are due) ...
    path = tmp_path / "behind.mkv"
    with open(path, "wb") as out:
        # ultrafast: catching up after the slow stretch must not need a fast machine
        rec = CompositeRecorder(encoder, out, options={"preset": "ultrafast"}, realtime=True)
        rec.add(synthetic("p1", realtime=True, marker_interval_s=1.0))
        encoder.until = time.monotonic() + 2.5  # ... for 2.5 s, then it catches up
        stats, seen = await live(rec, "p1", 4.6)
        buf = rec._people["p1"].audio
    # Of the 75 pictures due in 2.5 s the encoder takes at most ~13 (+6 waiting): how
    # many more the compositor made (and so dropped) depends on the machine's speed.
    assert stats.dropped_video_frames >= 15
    assert buf.dropped == 0 and stats.dropped_audio_s == 0
    # The output stays within a few pictures of real time (it was 3 s behind without
    # the bounded queue), far from where the audio buffer would drop anything.
    assert max(b for _, b in seen) < rec.policy.max_queued_audio
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    dropping = [m for m in warnings if "cannot keep up" in m]
    assert len(dropping) == 1, warnings  # logged once, with figures
    text = dropping[0]
    assert f"/{MAX_PICTURES_PENDING} at" in text and "x real time" in text, text
    d = check_output(path, stats)
    # All the audio is there: a beep at every marker (none lost), each in sync with
    # its flash where that picture was encoded.
    flashes, beeps = flash_times(d), beep_times(d)
    # (the file is as long as the wall-clock time it took, which a loaded machine stretches)
    markers = [k for k in range(1, int(stats.duration_s) + 1) if k + 0.15 < stats.duration_s]
    assert len(markers) >= 4 and len(beeps) == len(markers), (beeps, stats.duration_s)
    for flash, beep in match(flashes, beeps, FRAME + 0.005):
        assert beep is not None, f"no beep at the flash at {flash:.3f} s: {beeps}"


async def test_virtual_clock_audio_is_not_capped():
    # The virtual clock reads a track at most READ_AHEAD ahead instead: the live cap
    # does not apply (here it would cut what is waiting to be read).
    rec = CompositeRecorder(ENCODERS["mkv"], io.BytesIO(), realtime=False)
    rec.policy.max_queued_audio = 0.1
    rec.add(synthetic("p1", marker_interval_s=0))
    stats, seen = await live(rec, "p1", 1.0)
    buf = rec._people["p1"].audio
    assert stats.video_frames == 30 and stats.audio_samples == RATE
    assert buf.dropped == 0 and max(s for s, _ in seen) > 0.2 * RATE


class JumpingClock:
    """The wall clock plus ``extra`` seconds that a slow encoder adds instead of sleeping."""

    def __init__(self) -> None:
        self.extra = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.extra


class VirtualSlowEncoder(SlowEncoder):
    """Each picture "takes" ``seconds`` on ``clock`` (the clock jumps; nobody sleeps)."""

    def __init__(self, inner: Any, seconds: float, clock: JumpingClock):
        super().__init__(inner, seconds)
        self.clock = clock

    def open(self, output: Any, fmt: OutputFormat, options: Any) -> EncodedStream:
        stream = self.inner.open(output, fmt, options)
        clock, seconds = self.clock, self.seconds

        class Slow:
            def write_video(self, frame: av.VideoFrame) -> None:
                clock.extra += seconds
                stream.write_video(frame)

            def write_audio(self, frame: av.AudioFrame) -> None:
                stream.write_audio(frame)

            def close(self) -> None:
                stream.close()

        return Slow()


async def test_falling_behind_real_time_is_reported_once_before_anything_is_dropped(caplog):
    caplog.set_level(logging.INFO, "recfw.media")
    clock = JumpingClock()
    encoder = VirtualSlowEncoder(ENCODERS["mkv"], 0.25, clock)  # 4 pictures per second
    small = OutputFormat(320, 180, 30, 48000, "stereo")  # cheap to encode on any machine
    rec = CompositeRecorder(
        encoder, io.BytesIO(), small, {"preset": "ultrafast"}, realtime=True, clock=clock
    )
    rec.add(synthetic("p1", realtime=True, marker_interval_s=0, width=160, height=120))

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    await rec.start()
    for _ in range(6000):  # (at most a minute of wall time, however slow the machine)
        if any("behind real time" in m for m in messages()):
            break
        await asyncio.sleep(0.01)
    encoder.seconds = 0.0  # catch up
    stats = await rec.stop()
    warnings = messages()
    behind = [i for i, m in enumerate(warnings) if "behind real time" in m]
    assert len(behind) == 1, warnings  # once
    text = warnings[behind[0]]
    assert "1 participants" in text and "x real time" in text, text
    assert float(text.split(" s behind")[0].split()[-1]) >= 1.0  # (past 1.0, shown as %.1f)
    # Reported before any media had to go.
    dropped = [
        i for i, m in enumerate(warnings) if i not in behind and ("dropped" in m or "skipped" in m)
    ]
    assert all(i > behind[0] for i in dropped), warnings
    assert stats.max_behind_s > 1.0


async def test_a_recording_that_keeps_up_reports_nothing(caplog):
    caplog.set_level(logging.INFO, "recfw.media")
    clock = JumpingClock()
    encoder = VirtualSlowEncoder(ENCODERS["mkv"], 0.0, clock)
    small = OutputFormat(320, 180, 30, 48000, "stereo")
    rec = CompositeRecorder(
        encoder, io.BytesIO(), small, {"preset": "ultrafast"}, realtime=True, clock=clock
    )
    # a clock that stands still while the output is made: the output is never late
    clock_now = [0.0]
    rec.clock = lambda: clock_now[0]
    rec.add(synthetic("p1", realtime=False, marker_interval_s=0, width=160, height=120))
    await rec.start()
    for _ in range(20):
        clock_now[0] += 1 / 30
        await asyncio.sleep(0.05)
    stats = await rec.stop()
    assert not [r for r in caplog.records if "behind real time" in r.getMessage()]
    assert stats.max_behind_s <= 1 / 30 + 1e-9  # at most the clock's own step
