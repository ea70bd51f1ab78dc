"""The ``webm`` encoder: VP8 (default) or VP9 video and Opus audio in a WebM file.

Tuned for recording while the meeting runs: libvpx in ``realtime`` deadline
with a high ``cpu-used``, no look-ahead (``lag-in-frames = 0``) so frames leave
the encoder as they come, and a keyframe every two seconds so a file cut short
by a crash still plays up to near its end. Matroska/WebM is written as a
stream: clusters go out as they fill, the cues at the end are a bonus.

Options (the ``[encoder]`` table of the configuration):

``codec``
    ``"vp8"`` (default, fastest) or ``"vp9"``.
``bitrate``
    Video bits per second (default: about 0.1 bit per pixel per frame).
``cpu_used``
    libvpx speed/quality trade-off; default 8 (fastest realtime setting).
``audio_bitrate``
    Opus bits per second (default 96000).

Opus only runs at 8, 12, 16, 24 or 48 kHz: other rates are resampled to 48 kHz.
Audio gaps (a microphone that stalled) are filled with silence so that audio
stays in sync with video.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, BinaryIO

import av
from recfw.encoding import OutputFormat
from recfw.errors import FieldError

log = logging.getLogger(__name__)

CODECS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
KNOWN_OPTIONS = ("codec", "bitrate", "cpu_used", "audio_bitrate")
#: Longest audio gap filled with silence; a bigger jump restarts the audio clock.
MAX_SILENCE_SECONDS = 600


def _int_problem(options: Mapping[str, Any], key: str, lo: int, hi: int) -> FieldError | None:
    if key not in options:
        return None
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        return FieldError(key, f"must be a whole number from {lo} to {hi}, not {value!r}")
    return None


class WebmEncoder:
    """``fileFormat = "webm"``: VP8/VP9 + Opus in WebM, via PyAV (libvpx, libopus)."""

    name = "webm"
    extension = "webm"
    content_type = "video/webm"

    def validate_options(self, options: Mapping[str, Any]) -> list[FieldError]:
        """Every bad option, named by its option (``"codec"``), as :meth:`open` would reject it.

        The method recfw calls for ``recfw settings check`` and before recording.
        """
        errors = [
            FieldError(key, f"unknown webm option (known: {', '.join(KNOWN_OPTIONS)})")
            for key in sorted(set(options) - set(KNOWN_OPTIONS))
        ]
        codec = options.get("codec", "vp8")
        if codec not in CODECS:
            errors.append(FieldError("codec", f"must be one of {', '.join(CODECS)}, not {codec!r}"))
        ranges = {
            "bitrate": (0, 100_000_000),
            "cpu_used": (0, 16 if codec != "vp9" else 9),
            "audio_bitrate": (6000, 510000),
        }
        for key, (lo, hi) in ranges.items():
            problem = _int_problem(options, key, lo, hi)
            if problem is not None:
                errors.append(problem)
        return errors

    def _resolved(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options with defaults filled in; ``ValueError`` naming the first bad field."""
        errors = self.validate_options(options)
        if errors:
            raise ValueError(f"encoder.{errors[0].field}: {errors[0].message}")
        return {
            "codec": options.get("codec", "vp8"),
            "bitrate": options.get("bitrate", 0),
            "cpu_used": options.get("cpu_used", 8),
            "audio_bitrate": options.get("audio_bitrate", 96000),
        }

    def open(self, output: BinaryIO, fmt: OutputFormat, options: Mapping[str, Any]) -> WebmStream:
        return WebmStream(output, fmt, self._resolved(options))


class WebmStream:
    """One WebM file being written. Video pts in ``1/fps``, audio pts in samples."""

    def __init__(self, output: BinaryIO, fmt: OutputFormat, options: Mapping[str, Any]):
        self.fmt = fmt
        self._closed = False
        self._container = av.open(output, mode="w", format="webm")
        try:
            self._video = self._add_video(fmt, options)
            self._audio_rate = fmt.sample_rate if fmt.sample_rate in OPUS_RATES else 48000
            self._audio = self._add_audio(fmt, options)
        except Exception:
            self._container.close()
            raise
        self._resampler = av.AudioResampler(
            format="s16", layout=fmt.audio_layout, rate=self._audio_rate
        )
        self._fifo = av.AudioFifo()
        self._next_in: int | None = None  # next expected input pts (input samples)
        self._out_pts = 0  # pts of the next Opus frame (output samples)
        self._last_video_pts = -1

    def _add_video(self, fmt: OutputFormat, options: Mapping[str, Any]) -> Any:
        stream = self._container.add_stream(CODECS[options["codec"]], rate=fmt.fps)
        stream.width, stream.height = fmt.width, fmt.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fmt.fps)
        ctx = stream.codec_context
        ctx.time_base = Fraction(1, fmt.fps)
        ctx.gop_size = 2 * fmt.fps
        ctx.bit_rate = options["bitrate"] or max(
            200_000, int(fmt.width * fmt.height * fmt.fps * 0.1)
        )
        ctx.options = {
            "deadline": "realtime",
            "cpu-used": str(options["cpu_used"]),
            "lag-in-frames": "0",
            "auto-alt-ref": "0",
            **({"row-mt": "1"} if options["codec"] == "vp9" else {}),
        }
        return stream

    def _add_audio(self, fmt: OutputFormat, options: Mapping[str, Any]) -> Any:
        stream = self._container.add_stream("libopus", rate=self._audio_rate)
        stream.layout = fmt.audio_layout
        stream.format = "s16"
        stream.time_base = Fraction(1, self._audio_rate)
        stream.codec_context.bit_rate = options["audio_bitrate"]
        return stream

    # --- writing ----------------------------------------------------------------------

    def write_video(self, frame: av.VideoFrame) -> None:
        if frame.pts is None or frame.pts <= self._last_video_pts:
            raise ValueError(f"video pts must increase: {frame.pts} after {self._last_video_pts}")
        self._last_video_pts = frame.pts
        if (frame.width, frame.height, frame.format.name) != (
            self.fmt.width,
            self.fmt.height,
            "yuv420p",
        ):
            frame = frame.reformat(width=self.fmt.width, height=self.fmt.height, format="yuv420p")
        frame.time_base = self._video.codec_context.time_base
        self._mux(self._video.encode(frame))

    def write_audio(self, frame: av.AudioFrame) -> None:
        pts = frame.pts
        if pts is None:
            raise ValueError("audio frames need a pts (in samples)")
        if self._next_in is not None and pts > self._next_in:
            gap = pts - self._next_in
            if gap <= MAX_SILENCE_SECONDS * self.fmt.sample_rate:
                self._silence(gap)
            else:
                log.warning(
                    "audio jumped %.1f s ahead; not filling it with silence",
                    gap / self.fmt.sample_rate,
                )
        self._next_in = pts + frame.samples
        frame.pts = None  # the resampler and the fifo keep their own sample clock
        try:
            for out in self._resampler.resample(frame):
                self._fifo.write(out)
        finally:
            frame.pts = pts  # the caller's frame is left as it was
        self._drain(final=False)

    def _silence(self, samples: int) -> None:
        import numpy as np

        channels = 1 if self.fmt.audio_layout == "mono" else 2
        while samples > 0:
            n = min(samples, self.fmt.sample_rate)
            silent = av.AudioFrame.from_ndarray(
                np.zeros((1, n * channels), dtype=np.int16),
                format="s16",
                layout=self.fmt.audio_layout,
            )
            silent.sample_rate = self.fmt.sample_rate
            for out in self._resampler.resample(silent):
                self._fifo.write(out)
            samples -= n

    def _drain(self, final: bool) -> None:
        size = self._audio.codec_context.frame_size or 960
        while self._fifo.samples >= size or (final and self._fifo.samples > 0):
            chunk = self._fifo.read(min(size, self._fifo.samples))
            chunk.pts = self._out_pts
            chunk.time_base = Fraction(1, self._audio_rate)
            self._out_pts += chunk.samples
            self._mux(self._audio.encode(chunk))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        """Flush both encoders and finish the file (cues, durations)."""
        if self._closed:
            return
        self._closed = True
        try:
            for out in self._resampler.resample(None):
                self._fifo.write(out)
            self._drain(final=True)
            self._mux(self._video.encode(None))
            self._mux(self._audio.encode(None))
        finally:
            self._container.close()
