"""Cheap synthetic participants for load tests, benchmarks and recording tests.

A :class:`SyntheticParticipant` joins a recfw room over its real signalling
(the room page's WebSocket protocol and one WebRTC connection, like a browser)
and sends media that was encoded once, ahead of time: VP8 pictures that say who
it is, and Opus that is either silence or its own tone (:meth:`speak`). It never
encodes while running and never decodes what it receives (by default it asks for
nothing; ``receive=True`` takes the others' media as encoded frames only).

Every participant's picture is checkable in a recording, after scaling and
lossy coding::

    +----------------------------+
    |  #      (a marker moving   |   top: a white marker that moves every frame
    |          along the top)    |   (a frozen tile shows a still marker)
    |  colour (palette[i % 24])  |   rows 15-30 %: the participant's colour only
    |            12              |   middle: its number (for people)
    |                            |
    | [][][][][][][][]           |   bottom fifth: its number as 8 bits,
    +----------------------------+   white = 1, black = 0 (bit 7 first)

:func:`identify` reads the number back from an RGB picture of the tile (the
letterboxed picture's rectangle in the composite) and checks that the colour
matches; :func:`participant_colour` gives the colour. ::

    async with SyntheticCrowd(room_url, 20) as crowd:   # joins 20, a few at a time
        crowd[3].speak()                                 # participant 3 talks now
        ...

Other clients (a Janus publisher, say) can send the same media:
:func:`synthetic_media` returns the tracks without joining anything. They yield
encoded frames, so an aiortc sender must be set up to send them as they are:
``install_forwarder(transceiver.sender, track.keyframe_requested)`` from
:mod:`recfw.server.aiortc_tap`, before the offer (as
:class:`~recfw.server.client.HeadlessParticipant` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator, Sequence

import numpy as np

from ..media.glyphs import fit_scale, render
from ..rooms import Participant
from ..server.client import HeadlessParticipant
from ..server.encoded_source import PreEncodedAudio, PreEncodedVideo, encode_opus, encode_vp8
from ..sources import ParticipantMedia

log = logging.getLogger(__name__)

_LEVELS = (40, 128, 216)
#: Distinct participant colours (RGB): every mix of three levels except the greys.
PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    (r, g, b) for r in _LEVELS for g in _LEVELS for b in _LEVELS if not r == g == b
)
#: Bits of the number in the bottom strip (numbers 0..255).
CODE_BITS = 8
#: Participants' tones when speaking: ``BASE_TONE + TONE_STEP * (index % 40)`` Hz.
BASE_TONE = 300
TONE_STEP = 20
#: Amplitude of the tone (of 32767): about -15 dBFS RMS, like a voice at a normal level.
TONE_AMPLITUDE = 8000


def participant_colour(index: int) -> tuple[int, int, int]:
    """The RGB colour of participant ``index``'s picture."""
    return PALETTE[index % len(PALETTE)]


def participant_tone(index: int) -> int:
    """The frequency (Hz) participant ``index`` speaks at."""
    return BASE_TONE + TONE_STEP * (index % 40)


def picture(
    index: int, width: int, height: int, frame: int = 0, frames: int = 30, texture: bool = False
) -> np.ndarray:
    """Participant ``index``'s picture number ``frame`` (``height x width x 3`` RGB).

    ``texture``: add moving noise (about what a camera costs to code; a flat
    picture codes to almost nothing). :func:`identify` reads either.
    """
    if not 0 <= index < 1 << CODE_BITS:
        raise ValueError(f"participant index must be 0..{(1 << CODE_BITS) - 1}, got {index}")
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = participant_colour(index)
    if texture:
        rng = np.random.default_rng(index * 1000 + frame % frames)
        noise = rng.integers(-24, 25, (height, width, 1), dtype=np.int16)
        rgb[:] = np.clip(rgb.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    # the moving marker: across the top, one step per frame
    size = max(2, height // 12)
    x = (width - size) * (frame % frames) // max(frames - 1, 1)
    rgb[height // 40 : height // 40 + size, x : x + size] = 255
    # the number, in the middle
    text = str(index)
    top, bottom = int(height * 0.35), int(height * 0.7)
    scale = fit_scale(text, width // 2, bottom - top)
    mask = render(text, scale)
    y0 = top + (bottom - top - mask.shape[0]) // 2
    x0 = (width - mask.shape[1]) // 2
    region = rgb[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]]
    region[mask] = 255 if sum(participant_colour(index)) < 400 else 0
    # the number as bits, in the bottom fifth
    strip = rgb[height - height // 5 :]
    for bit in range(CODE_BITS):
        on = index >> (CODE_BITS - 1 - bit) & 1
        x0, x1 = bit * width // CODE_BITS, (bit + 1) * width // CODE_BITS
        strip[:, x0:x1] = 235 if on else 16
        if texture:
            strip[:, x0:x1] += rng.integers(0, 20, strip[:, x0:x1].shape[:2] + (1,), np.uint8)
    return rgb


def identify(rgb: np.ndarray, tolerance: float = 50.0) -> int | None:
    """The participant whose picture ``rgb`` (RGB, any scale) is, or ``None``.

    Reads the 8-bit number in the bottom strip and checks the colour band;
    ``None`` when the bits are unclear or the colour is not that participant's.
    """
    h, w = rgb.shape[:2]
    if h < 20 or w < 2 * CODE_BITS:
        return None
    strip = rgb[h - h // 5 + h // 40 : h - h // 40].astype(np.float32)
    index = 0
    for bit in range(CODE_BITS):
        x0, x1 = bit * w // CODE_BITS, (bit + 1) * w // CODE_BITS
        pad = max(1, (x1 - x0) // 5)
        level = float(strip[:, x0 + pad : x1 - pad].mean())
        if 70 < level < 180:  # neither black nor white: not a synthetic picture
            return None
        index = index << 1 | (level >= 128)
    band = rgb[int(h * 0.17) : int(h * 0.28), w // 10 : w - w // 10].reshape(-1, 3)
    colour = band.astype(np.float32).mean(axis=0)
    target = np.array(participant_colour(index), np.float32)
    if float(np.abs(colour - target).max()) > tolerance:
        return None
    return index


@functools.lru_cache(maxsize=64)
def _video_payloads(
    index: int, width: int, height: int, frames: int, texture: bool, bitrate: int
) -> tuple[bytes, ...]:
    pictures = [picture(index, width, height, i, frames, texture) for i in range(frames)]
    return tuple(encode_vp8(width, height, frames, frames, bitrate=bitrate, pictures=pictures))


@functools.lru_cache(maxsize=64)
def _tone_payloads(frequency: int) -> tuple[bytes, ...]:
    return tuple(encode_opus(1.0, float(frequency), amplitude=TONE_AMPLITUDE))


@functools.lru_cache(maxsize=1)
def _silence_payloads() -> tuple[bytes, ...]:
    return tuple(encode_opus(1.0, 0.0, amplitude=0))


class SyntheticAudio(PreEncodedAudio):
    """Pre-encoded Opus that is silence, or the participant's tone while :attr:`speaking`."""

    def __init__(self, index: int, speaking: bool = False):
        self.tone = list(_tone_payloads(participant_tone(index)))
        self.silence = list(_silence_payloads())
        super().__init__(self.tone if speaking else self.silence)
        self.speaking = speaking

    def speak(self, on: bool = True) -> None:
        """Send the tone (``on``) or silence from the next packet on."""
        self.speaking = on
        self.payloads = self.tone if on else self.silence


def synthetic_media(
    index: int,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 15,
    frames: int = 30,
    speaking: bool = False,
    participant_id: str | None = None,
    texture: bool = False,
    bitrate: int | None = None,
) -> ParticipantMedia:
    """Participant ``index``'s pre-encoded tracks (video and :class:`SyntheticAudio`).

    ``frames`` pictures are encoded once (cached per participant and settings)
    and sent in a loop at ``fps``, with a keyframe at the start of each loop and
    whenever one is asked for. ``texture`` and ``bitrate`` (bits/s, default
    about what a camera of this size sends) make the frames as big as a real
    camera's, for benchmarks of what is forwarded.
    """
    if width % 2 or height % 2 or width < 32 or height < 32:
        raise ValueError(f"size must be even and at least 32x32, got {width}x{height}")
    if fps < 1 or frames < 1:
        raise ValueError(f"fps and frames must be >= 1, got fps={fps}, frames={frames}")
    bitrate = bitrate or int(width * height * fps * 0.1)
    payloads = list(_video_payloads(index, width, height, frames, texture, bitrate))
    pid = participant_id or f"synthetic-{index}"
    return ParticipantMedia(
        Participant(id=pid, display_name=f"P{index}"),
        video=PreEncodedVideo(width, height, fps, payloads=payloads),
        audio=SyntheticAudio(index, speaking),
    )


class SyntheticParticipant(HeadlessParticipant):
    """A synthetic participant in a room: joins over the room's WebSocket + WebRTC.

    Its media are encoded when it is made (cached per number and settings; a
    fraction of a second per participant at 320x240, more at 720p): make
    participants before others join on the same event loop, whose connections
    would otherwise wait.

    ``receive=False`` (the default) offers no slots, so the server forwards
    nothing to it; ``receive=True`` offers them and keeps what arrives encoded
    (in :attr:`received`), never decoding it.
    """

    def __init__(
        self,
        url: str,
        index: int,
        *,
        name: str | None = None,
        receive: bool = False,
        width: int = 320,
        height: int = 240,
        fps: int = 15,
        speaking: bool = False,
        frames: int = 30,
        texture: bool = False,
        bitrate: int | None = None,
    ):
        self.index = index
        media = synthetic_media(
            index,
            width=width,
            height=height,
            fps=fps,
            frames=frames,
            speaking=speaking,
            texture=texture,
            bitrate=bitrate,
        )
        super().__init__(url, media, name=name or f"P{index}", tap_received=receive)

    @property
    def audio(self) -> SyntheticAudio:
        assert isinstance(self.media.audio, SyntheticAudio)
        return self.media.audio

    @property
    def speaking(self) -> bool:
        return self.audio.speaking

    def speak(self, on: bool = True) -> None:
        """Start (or with ``on=False`` stop) sending this participant's tone."""
        self.audio.speak(on)


class SyntheticCrowd(Sequence[SyntheticParticipant]):
    """``count`` synthetic participants joining one room (``concurrency`` at a time).

    An async context manager: every participant is connected inside, and all
    leave on exit (also when joining failed part-way). Numbers start at ``first``.
    """

    def __init__(
        self, url: str, count: int, *, first: int = 0, concurrency: int = 4, **options: object
    ):
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self.url = url
        self.participants = [
            SyntheticParticipant(url, first + i, **options)  # type: ignore[arg-type]
            for i in range(count)
        ]
        self.concurrency = max(1, concurrency)

    def __getitem__(self, i):
        return self.participants[i]

    def __len__(self) -> int:
        return len(self.participants)

    def __iter__(self) -> Iterator[SyntheticParticipant]:
        return iter(self.participants)

    async def join(self, timeout: float = 30.0) -> None:
        """Connect everyone; raise the first failure (after closing everyone)."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(p: SyntheticParticipant) -> None:
            async with gate:
                await p.connect(timeout)

        results = await asyncio.gather(*(one(p) for p in self.participants), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.close()
            raise errors[0]

    async def close(self) -> None:
        """Everyone leaves (idempotent)."""
        for p in self.participants:
            with contextlib.suppress(Exception):
                await p.close()

    async def __aenter__(self) -> SyntheticCrowd:
        await self.join()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = [
    "PALETTE",
    "SyntheticAudio",
    "SyntheticCrowd",
    "SyntheticParticipant",
    "identify",
    "participant_colour",
    "participant_tone",
    "picture",
    "synthetic_media",
]
