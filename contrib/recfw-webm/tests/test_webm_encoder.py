"""recfw-webm against recfw's encoder contract, plus its own options and registration."""

from __future__ import annotations

import pytest
from recfw.encoding import OutputFormat
from recfw.settings import parse_recording, validate
from recfw.testing import media
from recfw.testing.contracts import EncoderContract
from recfw_webm import WebmEncoder
from recfw_webm import plugin as webm_plugin


class TestWebmVp8(EncoderContract):
    plugin = WebmEncoder()


class TestWebmVp9(EncoderContract):
    plugin = WebmEncoder()
    max_examples = 4

    @pytest.fixture
    def encoder_options(self):
        return {"codec": "vp9"}


def test_streams_are_vp_and_opus(tmp_path):
    import av

    inp = media.steady_input(OutputFormat(160, 120, 15, 44100, "stereo"), seconds=1.0)
    path = media.encode_to_file(WebmEncoder(), inp, tmp_path / "a.webm", {"codec": "vp9"})
    with av.open(str(path)) as container:
        assert container.format.name.startswith("matroska")
        assert [s.codec_context.name for s in container.streams.video] == ["vp9"]
        assert [s.codec_context.name for s in container.streams.audio] in (["opus"], ["libopus"])
        assert container.streams.audio[0].sample_rate == 48000  # 44.1 kHz resampled


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"codec": "h264"}, "encoder.codec"),
        ({"bitrate": -1}, "encoder.bitrate"),
        ({"cpu_used": "fast"}, "encoder.cpu_used"),
        ({"crf": 20}, "encoder.crf"),
    ],
)
def test_bad_options_name_the_field(tmp_path, options, field):
    with open(tmp_path / "x.webm", "w+b") as out, pytest.raises(ValueError, match=field):
        WebmEncoder().open(out, OutputFormat(64, 48, 10), options)


def test_fileformat_webm_is_valid_once_registered(recfw_plugins, register_plugin):
    data = {
        "type": "local",
        "startTrigger": "automatic",
        "destination": {"provider": "local", "bucket": "rec", "fileFormat": "webm"},
    }
    before = [e.field for e in validate(parse_recording(data), recfw_plugins)]
    if "webm" not in recfw_plugins.encoders:  # not pip-installed here
        assert before == ["recording.destination.fileFormat"]
    register_plugin(webm_plugin, name="webm", plugins=recfw_plugins)
    assert recfw_plugins.encoders["webm"].extension == "webm"
    assert validate(parse_recording(data), recfw_plugins) == []


def test_settings_check_reports_bad_webm_options(recfw_plugins, register_plugin):
    """validate_options is the name recfw calls: bad options are caught before recording."""
    from recfw.settings import validate_encoder_options

    register_plugin(webm_plugin, name="webm", plugins=recfw_plugins)
    errors = validate_encoder_options(
        "webm", {"codec": "h264", "cpu_used": "fast", "crf": 20}, recfw_plugins
    )
    assert sorted(e.field for e in errors) == ["encoder.codec", "encoder.cpu_used", "encoder.crf"]
    assert validate_encoder_options("webm", {"codec": "vp9", "cpu_used": 5}, recfw_plugins) == []
