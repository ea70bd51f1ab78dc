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

Live recordings can step x264's preset down when the encoder cannot keep up
(and back up when it can): :meth:`_Stream.speed_steps` and :meth:`_Stream.set_speed`.
FFmpeg cannot change a running x264 encoder's preset, so a step opens a new x264
encoder whose first picture is an IDR frame and muxes its packets into the same
H.264 stream. That is only sound if the new encoder's parameter sets (SPS/PPS,
the stream's ``extradata``) are byte for byte the ones in the file header: a
live stream pins the options that shape them (``bframes=0`` and the configured
preset's ``ref``, ``cabac``, ``8x8dct``, ``weightp``), and every new encoder's
extradata is compared before it is used (a mismatch keeps the running encoder).
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

#: x264's header-shaping settings per preset (from x264's preset table): ``(ref,
#: cabac, 8x8dct, weightp, chroma QP offset)``. They decide the SPS/PPS; a live
#: stream pins the configured preset's values in every encoder it opens (see
#: set_speed). The chroma QP offset is x264's effective one: psy-RD (on from
#: subme 6, i.e. ``fast`` and slower) lowers it by 2.
_HEADER_SETTINGS = {
    "ultrafast": (1, 0, 0, 0, 0), "superfast": (1, 1, 1, 1, 0), "veryfast": (1, 1, 1, 1, 0),
    "faster": (2, 1, 1, 1, 0), "fast": (2, 1, 1, 2, -2), "medium": (3, 1, 1, 2, -2),
    "slow": (5, 1, 1, 2, -2), "slower": (8, 1, 1, 2, -2), "veryslow": (16, 1, 1, 2, -2),
    "placebo": (16, 1, 1, 2, -2),
}  # fmt: skip

#: The faster presets a live recording steps down to, in order (those faster
#: than the configured one).
SPEED_LADDER = ("veryfast", "superfast", "ultrafast")


def speed_ladder(preset: str) -> tuple[str, ...]:
    """``preset``, then the presets of :data:`SPEED_LADDER` faster than it."""
    rank = PRESETS.index(preset)
    return (preset,) + tuple(p for p in SPEED_LADDER if PRESETS.index(p) < rank)


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
        self.settings = settings
        #: Live only (see prefer_low_latency): the presets set_speed can switch to.
        self._ladder: tuple[str, ...] = (settings.preset,)
        self._speed = 0
        #: After a speed step: the encoder that replaced the stream's own.
        self._codec: av.VideoCodecContext | None = None
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
        if settings.crf is None:
            v.codec_context.bit_rate = settings.bitrate
        v.options = {**self._x264_options(settings.preset)}  # (typed dict[str, object])
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
        # The presets set_speed may switch to make the same SPS/PPS: no B-frames
        # (also no B-frame delay), and the configured preset's header settings.
        ref, cabac, dct8, weightp, _ = _HEADER_SETTINGS[self.settings.preset]
        self._pinned = f"bframes=0:ref={ref}:cabac={cabac}:8x8dct={dct8}:weightp={weightp}"
        self.video.options = {**self._x264_options(self.settings.preset)}
        self._ladder = speed_ladder(self.settings.preset)

    _pinned = ""

    def _x264_options(self, preset: str) -> dict[str, str]:
        opts = {"preset": preset, "keyint_min": str(self.settings.gop), "sc_threshold": "0"}
        if self.settings.crf is not None:
            opts["crf"] = str(self.settings.crf)
        if self._pinned:
            opts["x264-params"] = self._pinned
            chroma = _HEADER_SETTINGS[self.settings.preset][4]
            if chroma != _HEADER_SETTINGS[preset][4]:
                # x264 only lowers it itself with psy-RD, which the faster presets lack.
                opts["x264-params"] += f":chroma-qp-offset={chroma}"
        return opts

    # --- preset steps (live) -----------------------------------------------------

    def speed_steps(self) -> tuple[str, ...]:
        """The presets :meth:`set_speed` switches between, slowest (the configured one)
        first; one entry (no steps) unless :meth:`prefer_low_latency` was called."""
        return self._ladder

    @property
    def speed(self) -> int:
        """The step in use (an index into :meth:`speed_steps`)."""
        return self._speed

    def set_speed(self, step: int) -> bool:
        """Encode from the next picture on with preset ``speed_steps()[step]``.

        Opens a new x264 encoder with the new preset and otherwise the same
        settings, checks that its parameter sets are the ones in the file header,
        drains the running encoder into the file and hands over: the next picture
        is the new encoder's first, an IDR frame. Returns False (and keeps the
        running encoder) if the parameter sets differ.
        """
        if step == self._speed:
            return True
        if not 0 <= step < len(self._ladder):
            raise ValueError(f"speed step {step} is not one of 0..{len(self._ladder) - 1}")
        first = self.video.codec_context
        if not first.is_open:
            # Nothing encoded yet: the stream's own encoder opens with the new preset.
            self.video.options = {**self._x264_options(self._ladder[step])}
            self._speed = step
            return True
        codec = av.CodecContext.create("libx264", "w")
        assert isinstance(codec, av.VideoCodecContext)
        codec.width, codec.height, codec.pix_fmt = first.width, first.height, first.pix_fmt
        codec.time_base = self.fmt.video_time_base
        codec.framerate = first.framerate
        codec.gop_size = self.settings.gop
        codec.thread_type = first.thread_type
        codec.thread_count = first.thread_count
        codec.flags = first.flags  # GLOBAL_HEADER: parameter sets in extradata, as the stream's
        if self.settings.crf is None:
            codec.bit_rate = self.settings.bitrate
        codec.options = self._x264_options(self._ladder[step])
        codec.open()
        if bytes(codec.extradata or b"") != bytes(first.extradata or b""):
            log.warning(
                "x264 preset %s makes other parameter sets than the stream's %s: "
                "not switching (the file would not decode in every player)",
                self._ladder[step],
                self._ladder[self._speed],
            )
            return False
        running = self._codec or first
        self._mux_video(running.encode(None))  # its delayed pictures, in order
        self._codec = codec
        self._speed = step
        return True

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

    def _mux_video(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            packet.stream = self.video
        self._mux(packets)

    def write_video(self, frame: av.VideoFrame) -> None:
        if self._codec is None:
            self._mux(self.video.encode(frame))
        else:
            self._mux_video(self._codec.encode(frame))

    def write_audio(self, frame: av.AudioFrame) -> None:
        self._mux(self.audio.encode(frame))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if self._codec is None:
                self._mux(self.video.encode(None))
            else:
                self._mux_video(self._codec.encode(None))
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
