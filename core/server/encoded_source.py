"""Cheap synthetic participants: tracks that send media encoded once, ahead of time.

:class:`PreEncodedVideo` encodes ``frames`` VP8 frames (a numbered test picture,
a keyframe every ``keyframe_interval`` frames) when it is made and then sends
them in a loop at ``fps``, in real time, without encoding anything more. A
keyframe request (PLI/FIR) restarts the loop at its first frame, a keyframe.
:class:`PreEncodedAudio` does the same with 20 ms Opus packets of a tone.
Load tests, benchmarks and forwarding tests use them; ``sent`` records which
frame went out when.
"""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from .aiortc_tap import EncodedFrame, vp8_is_keyframe


def encode_vp8(
    width: int,
    height: int,
    frames: int,
    keyframe_interval: int,
    bitrate: int = 1_500_000,
    pictures: list[np.ndarray] | None = None,
) -> list[bytes]:
    """``frames`` VP8 frames of a moving test picture (keyframes every N frames).

    ``pictures``: the RGB pictures (``height x width x 3``) to encode instead.
    """
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = bitrate
    codec.time_base = fractions.Fraction(1, 30)
    codec.gop_size = keyframe_interval
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[bytes] = []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(frames):
        if pictures is not None:
            rgb = pictures[i % len(pictures)]
        else:
            rgb = np.empty((height, width, 3), np.uint8)
            rgb[..., 0] = (xx + 4 * i) % 256
            rgb[..., 1] = (yy + 2 * i) % 256
            rgb[..., 2] = ((xx // 16 + yy // 16 + i) % 2) * 200
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        if i % keyframe_interval == 0:
            frame.pict_type = av.video.frame.PictureType.I
        data = b"".join(bytes(p) for p in codec.encode(frame))
        out.append(data)
    out[-1] += b"".join(bytes(p) for p in codec.encode(None))
    if not vp8_is_keyframe(out[0]):
        raise RuntimeError("libvpx did not start with a keyframe")
    return out


def encode_opus(seconds: float = 1.0, tone: float = 440.0, amplitude: int = 8000) -> list[bytes]:
    """20 ms Opus packets (48 kHz stereo) of a tone (``amplitude`` 0: silence)."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 64000
    codec.time_base = fractions.Fraction(1, 48000)
    out: list[bytes] = []
    n = int(seconds * 50)
    for i in range(n):
        t = (np.arange(960) + 960 * i) / 48000
        wave = (np.sin(2 * np.pi * tone * t) * amplitude).astype(np.int16)
        samples = np.repeat(wave, 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = 960 * i
        out.extend(bytes(p) for p in codec.encode(frame))
    return out


class PreEncodedTrack(MediaStreamTrack):
    """Sends ``payloads`` in a loop, paced at ``rate`` per second (an ``EncodedFrame`` each)."""

    codec = ""
    clock = 90000

    def __init__(self, payloads: list[bytes], rate: float):
        super().__init__()
        self.payloads = payloads
        self.rate = rate
        self.index = 0
        self.count = 0
        self.sent: list[tuple[float, int]] = []  # (monotonic time, index into payloads)
        self._start: float | None = None
        self._step = round(self.clock / rate)

    def keyframe_requested(self) -> None:
        """Restart at the first frame (a keyframe)."""
        self.index = 0

    async def recv(self) -> EncodedFrame:  # type: ignore[override]  # sent as it is
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.count / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -2 / self.rate:  # late (a busy loop): carry on from now, no burst
            self._start = time.monotonic() - self.count / self.rate
        index = self.index
        data = self.payloads[index]
        self.index = (index + 1) % len(self.payloads)
        frame = EncodedFrame(self.codec, data, self.count * self._step, self._is_key(data))
        self.count += 1
        self.sent.append((time.monotonic(), index))
        return frame

    def _is_key(self, data: bytes) -> bool:
        return True


class PreEncodedVideo(PreEncodedTrack):
    """VP8 frames encoded once (see :func:`encode_vp8`), sent in a loop at ``fps``."""

    kind = "video"
    codec = "vp8"
    clock = 90000

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: float = 30,
        *,
        frames: int = 60,
        keyframe_interval: int = 30,
        payloads: list[bytes] | None = None,
    ):
        self.width, self.height = width, height
        super().__init__(payloads or encode_vp8(width, height, frames, keyframe_interval), fps)

    def _is_key(self, data: bytes) -> bool:
        return vp8_is_keyframe(data)


class PreEncodedAudio(PreEncodedTrack):
    """Opus packets encoded once (see :func:`encode_opus`), sent every 20 ms."""

    kind = "audio"
    codec = "opus"
    clock = 48000

    def __init__(self, payloads: list[bytes] | None = None):
        super().__init__(payloads or encode_opus(), 50)
