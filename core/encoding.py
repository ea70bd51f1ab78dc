"""The encoders' contract: frames in, bytes of one container file out.

An encoder never knows where its output goes: it is handed a binary, seekable
file object (the engine's spool file) and writes the container into it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

if TYPE_CHECKING:
    import av


@dataclass(frozen=True)
class OutputFormat:
    """The media the engine hands an encoder: constant-rate video, fixed-rate audio.

    Video frames arrive as ``yuv420p`` frames of ``width`` x ``height`` with
    ``pts`` counted in ``1/fps``; audio frames as ``s16`` interleaved frames of
    ``audio_layout`` at ``sample_rate`` with ``pts`` counted in samples. Both
    start at 0 and only ever increase.
    """

    width: int = 1280
    height: int = 720
    fps: int = 30
    sample_rate: int = 48000
    audio_layout: str = "stereo"

    @property
    def video_time_base(self) -> Fraction:
        return Fraction(1, self.fps)

    @property
    def audio_time_base(self) -> Fraction:
        return Fraction(1, self.sample_rate)


@runtime_checkable
class EncodedStream(Protocol):
    """One open output file. Written from one thread, in pts order per stream."""

    def write_video(self, frame: av.VideoFrame) -> None:
        """Encode one video frame (``frame.pts`` in ``OutputFormat.video_time_base``)."""
        ...

    def write_audio(self, frame: av.AudioFrame) -> None:
        """Encode one audio frame (``frame.pts`` in ``OutputFormat.audio_time_base``)."""
        ...

    def close(self) -> None:
        """Flush the encoders and finish the container. Called exactly once."""
        ...


@runtime_checkable
class Encoder(Protocol):
    """A file format. ``name`` is its ``fileFormat`` value in settings.

    Optional (not part of the required members, so encoders without it still
    fit): ``validate_options(options: Mapping[str, Any]) -> list[FieldError]``
    returns every option :meth:`open` would reject, each ``FieldError`` named by
    the option (``"crf"``) with the problem. :func:`recfw.settings.validate_encoder_options`
    calls it to check the ``[encoder]`` settings before any recording starts.
    """

    name: str
    #: File name extension without the dot, e.g. ``"mkv"``.
    extension: str
    #: MIME type for sinks that record one (e.g. S3's Content-Type).
    content_type: str

    def open(
        self, output: BinaryIO, fmt: OutputFormat, options: Mapping[str, Any]
    ) -> EncodedStream:
        """Start a file in ``output``. ``options`` are the user's encoder settings.

        The result must stay decodable up to the last frame written if the
        process dies before :meth:`EncodedStream.close` (crash-safe formats:
        Matroska written as a stream, fragmented MP4, ...).
        """
        ...


def write_error_text(exc: BaseException, path: str | os.PathLike[str] | None = None) -> str:
    """One line for an error while writing a recording, naming a full disk as such.

    PyAV reports a failed write of a Python file object as ``PyAVCallbackError:
    [Errno 1447131472] Error in PyAV callback`` once the original ``OSError`` is
    gone; then the file system of ``path`` (or the error's ``filename``) is asked
    whether it is full.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in _DISK_FULL:
            return f"the disk is full ({os.strerror(cause.errno)})"
        cause = cause.__cause__ or cause.__context__
    where = path or getattr(exc, "filename", None)
    if where and type(exc).__name__ == "PyAVCallbackError" and _is_full(where):
        return "the disk is full (No space left on device)"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def _is_full(path: str | os.PathLike[str]) -> bool:
    """Whether the file system holding ``path`` has no space left for this user."""
    try:
        stat = os.statvfs(os.path.dirname(os.fspath(path)) or ".")
    except (OSError, ValueError):
        return False
    return stat.f_bavail * stat.f_frsize < 64 * 1024
