"""The mkv/mp4 encoders on their own: options, sample rates, keyframe interval."""

from __future__ import annotations

import av
import pytest
from recfw.encoding import OutputFormat
from recfw.testing import media

from .conftest import ENCODERS


@pytest.mark.parametrize("name", ["mkv", "mp4"])
@pytest.mark.parametrize("rate", [44100, 48000])
def test_any_output_sample_rate_is_encoded(name, rate, tmp_path):
    inp = media.steady_input(OutputFormat(320, 240, 30, rate, "stereo"), seconds=1.0)
    got = media.decode_file(media.encode_to_file(ENCODERS[name], inp, tmp_path / f"a.{name}"))
    assert got.video_count == 30
    assert got.audio_end == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("name", ["mkv", "mp4"])
def test_gop_and_bitrate_options_are_used(name, tmp_path):
    inp = media.steady_input(OutputFormat(320, 240, 30), seconds=2.0, audio=False)
    path = media.encode_to_file(
        ENCODERS[name], inp, tmp_path / f"b.{name}", {"gop": 15, "bitrate": "300k"}
    )
    with av.open(str(path)) as c:
        keys = [p.is_keyframe for p in c.demux(video=0) if p.size]
    assert len(keys) == 60
    assert [i for i, k in enumerate(keys) if k] == [0, 15, 30, 45]


async def test_live_recordings_ask_for_slice_threads_and_others_keep_frame_threads():
    import io

    from recfw.media import CompositeRecorder
    from recfw.plugins.encoders import MkvEncoder

    from .conftest import synthetic

    opened = []

    class Spy(MkvEncoder):
        def open(self, output, fmt, options):
            stream = super().open(output, fmt, options)
            opened.append(stream)
            return stream

    for realtime in (False, True):
        rec = CompositeRecorder(Spy(), io.BytesIO(), realtime=realtime)
        rec.add(synthetic("p1", realtime=realtime, width=160, height=120))
        await rec.start()
        await rec.wait_until(0.1)
        await rec.stop()
    frame, live = (s.video.codec_context.thread_type.name for s in opened)
    assert (frame, live) == ("FRAME", "SLICE")
