"""Media helpers for encoder tests: write frames through an encoder, decode what came out.

::

    path = encode_to_file(encoder, inp, tmp_path / "out.mkv")
    media = decode_file(path)            # raises if the file does not decode
    assert media.video_count == len(inp.video)

Decoding uses PyAV, the same library recfw records with, so a file that
:func:`decode_file` reads is one ffmpeg-based players read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..encoding import Encoder, OutputFormat
from .strategies import EncoderInput, _noise, _video_frame


@dataclass
class DecodedMedia:
    """What a file decoded to: frame times (seconds, in decode output order)."""

    video_times: list[float] = field(default_factory=list)
    audio_times: list[float] = field(default_factory=list)
    #: End (seconds) of the last video frame / audio frame.
    video_end: float = 0.0
    audio_end: float = 0.0
    #: The error that stopped decoding early (only from :func:`decode_partial`).
    error: str | None = None

    @property
    def video_count(self) -> int:
        return len(self.video_times)

    @property
    def audio_count(self) -> int:
        return len(self.audio_times)

    @property
    def end(self) -> float:
        return max(self.video_end, self.audio_end)


def encode_to_file(
    encoder: Encoder,
    inp: EncoderInput,
    path: Path,
    options: Mapping[str, Any] | None = None,
    close: bool = True,
) -> Path:
    """Open ``path`` as the encoder's output file, write ``inp`` interleaved, close it."""
    with open(path, "w+b") as output:
        stream = encoder.open(output, inp.fmt, dict(options or {}))
        for kind, frame in inp.interleaved():
            if kind == "video":
                stream.write_video(frame)
            else:
                stream.write_audio(frame)
        if close:
            stream.close()
    return path


def _decode(path: Path, tolerant: bool) -> DecodedMedia:
    import av

    out = DecodedMedia()
    try:
        container = av.open(str(path))
    except Exception as exc:
        if not tolerant:
            raise
        out.error = f"{type(exc).__name__}: {exc}"
        return out
    with container:
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        try:
            for packet in container.demux(*streams):
                for frame in packet.decode():
                    _add(out, frame, packet.stream)
        except Exception as exc:
            if not tolerant:
                raise
            out.error = f"{type(exc).__name__}: {exc}"
    return out


def _add(out: DecodedMedia, frame: Any, stream: Any) -> None:
    if frame.pts is None or frame.time_base is None:
        raise ValueError(f"a decoded {stream.type} frame has no timestamp")
    t = float(frame.pts * frame.time_base)
    if stream.type == "video":
        out.video_times.append(t)
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        out.video_end = max(out.video_end, t + float(1 / rate))
    else:
        out.audio_times.append(t)
        out.audio_end = max(out.audio_end, t + frame.samples / frame.sample_rate)


def decode_file(path: Path) -> DecodedMedia:
    """Decode every frame of ``path``; any demux or decode error is raised."""
    return _decode(Path(path), tolerant=False)


def decode_partial(path: Path) -> DecodedMedia:
    """Decode as much of ``path`` as possible (a truncated file); the error is kept in ``error``."""
    return _decode(Path(path), tolerant=True)


def steady_input(fmt: OutputFormat, seconds: float, audio: bool = True) -> EncoderInput:
    """``seconds`` of evenly timed video (and audio) in ``fmt``; the picture changes each frame."""
    import av

    video = []
    for i in range(max(1, int(seconds * fmt.fps))):
        frame = _video_frame(i, fmt.width, fmt.height, "rgb24").reformat(format="yuv420p")
        frame.pts = i
        frame.time_base = fmt.video_time_base
        video.append(frame)
    frames = []
    if audio:
        channels = 1 if fmt.audio_layout == "mono" else 2
        samples = fmt.sample_rate // 50
        for i in range(int(seconds * 50)):
            aframe = av.AudioFrame.from_ndarray(
                _noise(i, (1, samples * channels), "int16"), format="s16", layout=fmt.audio_layout
            )
            aframe.sample_rate = fmt.sample_rate
            aframe.pts = i * samples
            aframe.time_base = fmt.audio_time_base
            frames.append(aframe)
    return EncoderInput(fmt, video, frames)


def truncate_copy(path: Path, fraction: float, target: Path) -> Path:
    """Write the first ``fraction`` of ``path``'s bytes to ``target`` (a crashed recording)."""
    data = Path(path).read_bytes()
    Path(target).write_bytes(data[: int(len(data) * fraction)])
    return Path(target)


__all__ = [
    "DecodedMedia",
    "decode_file",
    "decode_partial",
    "encode_to_file",
    "steady_input",
    "truncate_copy",
]


def has_reconnecting_label(rgb: Any, cell: Any) -> bool:
    """Whether grid ``cell`` (a :class:`recfw.media.layout.Rect`) of an RGB frame
    (``H x W x 3`` uint8) shows the RECONNECTING label of a participant whose media
    stopped: a neutral dark band across the cell's middle with white letters."""
    import numpy as np

    mid = cell.y + cell.h // 2
    band = np.asarray(rgb)[mid - 6 : mid + 6, cell.x : cell.x + cell.w]
    white = float((band.min(axis=2) > 190).mean())
    dark = float((band.max(axis=2) < 45).mean())
    return white > 0.03 and dark > 0.4
