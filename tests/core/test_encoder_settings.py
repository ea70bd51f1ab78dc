"""``[encoder]`` options are checked at config time, by the file format's own encoder."""

from __future__ import annotations

import io

import pytest
import recfw
from recfw.encoding import Encoder, OutputFormat
from recfw.errors import FieldError
from recfw.manager import Plugins
from recfw.settings import validate_encoder_options


def _fields(errors: list[FieldError]) -> list[str]:
    return [e.field for e in errors]


@pytest.mark.parametrize("file_format", ["mkv", "mp4"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"crf": 20, "preset": "fast", "gop": 30},
        {"crf": "28"},
        {"bitrate": "2500k", "audio_bitrate": "96k"},
        {"bitrate": 2_000_000, "gop": 1},
    ],
)
def test_valid_options_pass(builtin_plugins, file_format, options):
    assert validate_encoder_options(file_format, options, builtin_plugins) == []


@pytest.mark.parametrize("file_format", ["mkv", "mp4"])
@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"crf": "abc"}, "encoder.crf", "'abc' is not a number"),
        ({"crf": 52}, "encoder.crf", "0..51"),
        ({"crf": True}, "encoder.crf", "not a number"),
        ({"preset": "warp"}, "encoder.preset", "'warp' is not one of"),
        ({"bitrate": "fast"}, "encoder.bitrate", "not a bit rate"),
        ({"audio_bitrate": "-1k"}, "encoder.audio_bitrate", "positive"),
        ({"gop": 0}, "encoder.gop", ">= 1"),
        ({"gop": [1]}, "encoder.gop", "not a number"),
        ({"crfx": 20}, "encoder.crfx", "unknown option (known: preset, crf,"),
    ],
)
def test_bad_options_name_the_field(builtin_plugins, file_format, options, field, words):
    (error,) = validate_encoder_options(file_format, options, builtin_plugins)
    assert error.field == field
    assert words in error.message
    # The check agrees with what opening a recording would do.
    encoder = builtin_plugins.encoders[file_format]
    with pytest.raises(ValueError, match=field.split(".", 1)[1]):
        encoder.open(io.BytesIO(), OutputFormat(), options)


def test_every_bad_option_is_reported_at_once(builtin_plugins):
    errors = validate_encoder_options(
        "mkv", {"crf": "abc", "tune": "film", "gop": -3}, builtin_plugins
    )
    assert sorted(_fields(errors)) == ["encoder.crf", "encoder.gop", "encoder.tune"]


def test_not_a_table(builtin_plugins):
    assert validate_encoder_options("mkv", ["crf"], builtin_plugins) == [
        FieldError("encoder", "must be a table of encoder options")
    ]


def test_unknown_or_unset_format_is_left_to_validate(builtin_plugins):
    # recording.destination.fileFormat reports it; nothing to check options against.
    assert validate_encoder_options("webm", {"crf": "abc"}, builtin_plugins) == []
    assert validate_encoder_options(None, {"crf": "abc"}, builtin_plugins) == []


class _Minimal:
    """A third-party encoder without validate_options: it still fits the contract."""

    name = extension = "minimal"
    content_type = "application/octet-stream"

    def open(self, output, fmt, options):
        raise NotImplementedError


class _Broken(_Minimal):
    name = extension = "broken"

    def validate_options(self, options):
        raise RuntimeError("options table went missing")


class _Relative(_Minimal):
    name = extension = "relative"

    def validate_options(self, options):
        return [FieldError(key, "not supported") for key in options]


class _ThirdParty:
    @staticmethod
    @recfw.hookimpl
    def recfw_register_encoders(register):
        register(_Minimal())
        register(_Broken())
        register(_Relative())


@pytest.fixture
def third_party() -> Plugins:
    plugins = Plugins(environ={})
    plugins.load_entry_points()
    plugins.register(_ThirdParty, name="third-party-formats")
    assert plugins.failures == []
    return plugins


def test_encoders_without_the_method_still_fit_and_are_not_checked(third_party):
    assert isinstance(_Minimal(), Encoder)
    assert validate_encoder_options("minimal", {"anything": 1}, third_party) == []


def test_a_plugins_errors_are_named_under_encoder(third_party):
    assert validate_encoder_options("relative", {"speed": 3}, third_party) == [
        FieldError("encoder.speed", "not supported")
    ]


def test_a_raising_check_names_the_format_and_plugin(third_party):
    (error,) = validate_encoder_options("broken", {}, third_party)
    assert error.field == "encoder"
    assert "'broken' encoder" in error.message
    assert "third-party-formats" in error.message
    assert "RuntimeError: options table went missing" in error.message
