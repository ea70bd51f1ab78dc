"""Built-in encoders: ``mkv`` (H.264 + Opus in Matroska) and ``mp4`` (H.264 + AAC, fragmented).

Both keep the file decodable up to the last written second if the process dies:
packets are flushed to the output as they are muxed (``flush_packets``), the
Python file object is flushed every second of video, Matroska closes a cluster
at least every half second, and MP4 is fragmented (``empty_moov``, a fragment per
second; ``delay_moov`` writes the header with the first fragment, so a file
cut in its first second has nothing to decode).

Options (from the ``encoder`` settings): ``preset`` (default ``veryfast``),
``crf`` (default 23) or ``bitrate`` (bits/s, e.g. ``"2500k"``; replaces CRF),
``gop`` (keyframe interval in frames, default 2 s worth), ``audio_bitrate``
(default 128k).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import av
from recfw import hookimpl
from recfw.encoding import EncodedStream, OutputFormat
from recfw.errors import FieldError

log = logging.getLogger(__name__)

#: The sample rates Opus encodes; other rates are resampled to 48 kHz.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)

PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow", "placebo",
)  # fmt: skip


class _OptionError(ValueError):
    """One bad encoder option: ``option`` and what is wrong with it."""

    def __init__(self, option: str, problem: str):
        self.option, self.problem = option, problem
        super().__init__(f"encoder option {option!r}: {problem}")


def _bits(value: Any, field: str) -> int:
    """``"2500k"``, ``"2M"``, ``2500000`` -> bits per second."""
    text = str(value).strip().lower()
    mult = 1
    if text.endswith("k"):
        mult, text = 1000, text[:-1]
    elif text.endswith("m"):
        mult, text = 1_000_000, text[:-1]
    try:
        if isinstance(value, bool):
            raise ValueError
        bits = int(float(text) * mult)
    except (ValueError, OverflowError):
        raise _OptionError(field, f"{value!r} is not a bit rate (e.g. 2500k)") from None
    if bits <= 0:
        raise _OptionError(field, f"must be positive, got {value!r}")
    return bits


def _whole(options: Mapping[str, Any], option: str, default: int) -> int:
    value = options.get(option, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise _OptionError(option, f"{value!r} is not a number") from None


#: The options both built-in encoders read.
KNOWN_OPTIONS = ("preset", "crf", "bitrate", "gop", "audio_bitrate")


@dataclass(frozen=True)
class VideoSettings:
    """H.264 settings, checked: preset, CRF or bitrate, keyframe interval."""

    preset: str
    crf: int | None
    bitrate: int | None
    gop: int
    audio_bitrate: int

    @classmethod
    def parse(cls, options: Mapping[str, Any], fmt: OutputFormat) -> VideoSettings:
        """The checked settings; ``ValueError`` naming every bad option."""
        settings, problems = cls.check(options, fmt)
        if settings is None:
            raise ValueError("; ".join(str(p) for p in problems))
        return settings

    @classmethod
    def check(
        cls, options: Mapping[str, Any], fmt: OutputFormat
    ) -> tuple[VideoSettings | None, list[_OptionError]]:
        """``(settings, [])``, or ``(None, problems)`` with one problem per bad option."""
        problems: list[_OptionError] = []

        def read(fn: Any, *args: Any) -> Any:
            try:
                return fn(*args)
            except _OptionError as exc:
                problems.append(exc)
                return None

        for option in sorted(set(map(str, options)) - set(KNOWN_OPTIONS)):
            problems.append(
                _OptionError(option, f"unknown option (known: {', '.join(KNOWN_OPTIONS)})")
            )
        preset = options.get("preset", "veryfast")
        if preset not in PRESETS:
            problems.append(
                _OptionError("preset", f"{preset!r} is not one of {', '.join(PRESETS)}")
            )
        bitrate = read(_bits, options["bitrate"], "bitrate") if options.get("bitrate") else None
        crf: int | None = None
        if not options.get("bitrate"):
            crf = read(_whole, options, "crf", 23)
            if crf is not None and not 0 <= crf <= 51:
                problems.append(_OptionError("crf", f"must be 0..51, got {crf}"))
        gop = read(_whole, options, "gop", 2 * fmt.fps)
        if gop is not None and gop < 1:
            problems.append(_OptionError("gop", f"must be >= 1, got {gop}"))
        audio_bitrate = read(_bits, options.get("audio_bitrate", "128k"), "audio_bitrate")
        if problems:
            return None, problems
        return cls(str(preset), crf, bitrate, gop, audio_bitrate), []


class _Stream:
    """One open output: an H.264 video stream and one audio stream in ``container``."""

    def __init__(
        self,
        output: BinaryIO,
        fmt: OutputFormat,
        settings: VideoSettings,
        container_format: str,
        audio_codec: str,
        container_options: dict[str, str],
    ):
        self.output = output
        self.fmt = fmt
        self.container = av.open(output, "w", format=container_format, options=container_options)
        v = self.container.add_stream("libx264", rate=fmt.fps)
        v.width, v.height, v.pix_fmt = fmt.width, fmt.height, "yuv420p"
        v.time_base = fmt.video_time_base
        v.codec_context.time_base = fmt.video_time_base
        v.codec_context.gop_size = settings.gop
        # Frame threads (FFmpeg's command-line default; PyAV opens slice threads):
        # x264 encodes several pictures at once in its own threads, so it overlaps
        # with the compositing of the next picture: the least CPU per picture and
        # the smallest file. Costs a few frames of delay. Live recordings switch to
        # slice threads (see prefer_low_latency).
        v.codec_context.thread_type = "FRAME"
        v.codec_context.thread_count = 0  # x264's auto: 1.5 x the processors
        opts: dict[str, object] = {
            "preset": settings.preset,
            "keyint_min": str(settings.gop),
            "sc_threshold": "0",
        }
        if settings.crf is not None:
            opts["crf"] = str(settings.crf)
        else:
            v.codec_context.bit_rate = settings.bitrate
        v.options = opts
        rate = fmt.sample_rate
        if audio_codec == "libopus" and rate not in OPUS_RATES:
            rate = 48000  # PyAV resamples the frames to the codec's rate
        a = self.container.add_stream(audio_codec, rate=rate)
        if not isinstance(a, av.AudioStream):
            raise ValueError(f"{audio_codec!r} is not an audio codec")
        a.layout = fmt.audio_layout
        a.bit_rate = settings.audio_bitrate
        self.video, self.audio = v, a
        self.closed = False
        self._since_flush = 0

    def prefer_low_latency(self) -> None:
        """Live recordings call this before the first frame: x264 slice threads.

        Each picture is split into slices encoded at once, so a picture is done
        soon after it is handed over. On a machine where other work competes for
        the processors (other recordings, other processes), frame threads wait on
        each other's reference rows and fall behind real time sooner; independent
        slices keep up. Costs a few percent more bits and no more CPU.
        """
        self.video.codec_context.thread_type = "SLICE"

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self.container.mux(packet)
            if packet.stream is self.video:
                self._since_flush += 1
        # Hand the bytes to the OS about once a second of video, so a killed
        # process loses at most that much.
        if self._since_flush >= self.fmt.fps:
            self._since_flush = 0
            self.output.flush()

    def write_video(self, frame: av.VideoFrame) -> None:
        self._mux(self.video.encode(frame))

    def write_audio(self, frame: av.AudioFrame) -> None:
        self._mux(self.audio.encode(frame))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._mux(self.video.encode(None))
            self._mux(self.audio.encode(None))
        finally:
            self.container.close()
            self.output.flush()


class _Encoder:
    name: str
    extension: str
    content_type: str
    container_format: str
    audio_codec: str
    container_options: dict[str, str]

    def open(
        self, output: BinaryIO, fmt: OutputFormat, options: Mapping[str, Any]
    ) -> EncodedStream:
        settings = VideoSettings.parse(options, fmt)
        log.debug("%s: opening with %s", self.name, settings)
        return _Stream(
            output,
            fmt,
            settings,
            self.container_format,
            self.audio_codec,
            dict(self.container_options),
        )

    def validate_options(self, options: Mapping[str, Any]) -> list[FieldError]:
        """Every bad option, named by its option (``"crf"``), as :meth:`open` would reject it."""
        _, problems = VideoSettings.check(options, OutputFormat())
        return [FieldError(p.option, p.problem) for p in problems]


class MkvEncoder(_Encoder):
    """H.264 + Opus in Matroska; clusters of at most 0.5 s, flushed as written."""

    name = "mkv"
    extension = "mkv"
    content_type = "video/x-matroska"
    container_format = "matroska"
    audio_codec = "libopus"
    container_options = {"flush_packets": "1", "cluster_time_limit": "500"}


class Mp4Encoder(_Encoder):
    """H.264 + AAC in fragmented MP4 (a fragment per second, moov with the first one)."""

    name = "mp4"
    extension = "mp4"
    content_type = "video/mp4"
    container_format = "mp4"
    audio_codec = "aac"
    container_options = {
        "flush_packets": "1",
        # delay_moov: the moov is written with the first fragment, so it carries
        # the edit lists that hide AAC priming and B-frame delay (A/V in sync).
        # A fragment every second (not only at keyframes): a crash loses <= ~1 s.
        "movflags": "empty_moov+delay_moov+default_base_moof",
        "frag_duration": "1000000",
    }


@hookimpl
def recfw_register_encoders(register) -> None:
    register(MkvEncoder())
    register(Mp4Encoder())
