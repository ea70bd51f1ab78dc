"""recfw.testing.syncmarks: the marker files and the measurement the lip-sync figures use."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from recfw.testing.syncmarks import beep_hz, compare, measure, summary, write_fake_media


def _mux(tmp_path, video_path, audio_path, audio_delay: float, name: str):
    """The marker files into one .mkv, the audio ``audio_delay`` seconds late."""
    out_path = tmp_path / name
    with av.open(str(video_path)) as vin, av.open(str(audio_path)) as ain:
        frames = [f.to_ndarray(format="gray") for f in vin.decode(video=0)]
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in ain.decode(audio=0)])
    with av.open(str(out_path), "w") as out:
        v = out.add_stream("libx264", rate=15)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        v.options = {"preset": "ultrafast"}
        a = out.add_stream("pcm_s16le", rate=48000)
        a.layout = "mono"
        for i, gray in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.stack([gray] * 3, axis=-1), format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, 15)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        delayed = np.concatenate([np.zeros(round(audio_delay * 48000), np.int16), pcm])
        for start in range(0, len(delayed), 960):
            chunk = delayed[start : start + 960].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            frame.time_base = fractions.Fraction(1, 48000)
            out.mux(a.encode(frame))
        out.mux(a.encode(None))
    return out_path


def test_markers_are_found_paired_and_told_apart_by_pitch(tmp_path):
    video, audio = write_fake_media(tmp_path, seconds=6.0, audio_seconds=6.0)
    assert beep_hz(0) != beep_hz(1)
    on_time = measure(_mux(tmp_path, video, audio, 0.0, "a.mkv"))
    late = measure(_mux(tmp_path, video, audio, 0.040, "b.mkv"))
    assert [i for _, _, i in on_time.pairs] == [0, 1, 2, 3, 4, 5]
    assert all(abs(offset) < 0.002 for _, offset, _ in on_time.pairs), on_time.pairs
    assert all(abs(offset - 0.040) < 0.002 for _, offset, _ in late.pairs), late.pairs
    errors = compare(late.pairs, on_time.pairs)
    assert len(errors) == 6
    result = summary(errors)
    assert result.p95_abs_ms == pytest.approx(40, abs=2)
    assert abs(result.drift_ms_per_min) < 5
    assert on_time.longest_silence > 0.9  # silence between the beeps (not a gap check here)
