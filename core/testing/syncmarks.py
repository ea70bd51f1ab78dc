"""Flash + beep sync markers: fake camera/microphone files, and the A/V offsets in a recording.

:func:`write_fake_media` writes what Chromium's fake devices play
(``--use-file-for-fake-video-capture=<y4m>``, ``--use-file-for-fake-audio-capture=<wav>``):
a dark picture that turns white for a few frames, and silence with a short beep,
at the same instants (every ``period`` seconds; Chromium loops both files). Each
beep of the audio file has its own pitch (:func:`beep_hz`), so a beep can be
told from the others in any recording of it.

:func:`measure` decodes a recording (any container PyAV reads: the composite
``.mkv``, a browser's ``MediaRecorder`` ``.webm``), finds each flash (the first
frame of a run of white pictures) and each beep onset and pitch, pairs each
beep with the nearest flash, and gives each pair's offset (beep - flash,
seconds). :func:`compare` lines up two recordings of the same source by the
beeps' pitches: under load a browser's fake camera delivers its file's frames
late (the picture drifts from the sound at the source), so a recording is
judged against what the browser itself captured, beep by beep.
:func:`summary` reduces offsets to percentiles and a drift (ms per minute).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

#: The beeps: tone bursts this long and loud (full scale 1.0), marker k at beep_hz(k).
BEEP_S = 0.060
BEEP_LEVEL = 0.7
#: Pitch of marker 0 and the step between markers (Hz); the audio file holds at most
#: BEEPS markers (then it loops).
BEEP_BASE_HZ = 600.0
BEEP_STEP_HZ = 40.0
BEEPS = 48


def beep_hz(index: int) -> float:
    """The pitch of marker ``index`` of the audio file."""
    return BEEP_BASE_HZ + BEEP_STEP_HZ * (index % BEEPS)


def write_fake_media(
    folder: Path,
    *,
    seconds: float = 6.0,
    audio_seconds: float = 48.0,
    period: float = 1.0,
    width: int = 320,
    height: int = 180,
    fps: int = 15,
    flash_frames: int = 2,
    rate: int = 48000,
) -> tuple[Path, Path]:
    """Write ``marks.y4m`` and ``marks.wav`` into ``folder``; return their paths.

    Markers at 0, ``period``, 2 ``period``, ... (``seconds`` must be a multiple of
    ``period``, and ``period`` of the frame interval, so the loop and the frames
    stay on the markers). The audio file is ``audio_seconds`` long (a multiple of
    ``seconds``; at most :data:`BEEPS` markers): each of its beeps has its own pitch.
    """
    if audio_seconds / period > BEEPS or round(audio_seconds / seconds) * seconds != audio_seconds:
        raise ValueError("audio_seconds: a multiple of seconds, at most BEEPS markers")
    frames = round(seconds * fps)
    per = round(period * fps)
    if abs(per - period * fps) > 1e-9 or frames % per:
        raise ValueError("seconds must be a multiple of period, period of 1/fps")
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / "marks.y4m"
    y_size, c_size = width * height, (width // 2) * (height // 2)
    dark = bytes([40]) * y_size + bytes([128]) * (2 * c_size)
    white = bytes([235]) * y_size + bytes([128]) * (2 * c_size)
    with open(video, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            out.write(b"FRAME\n")
            out.write(white if i % per < flash_frames else dark)
    audio = folder / "marks.wav"
    n = round(audio_seconds * rate)
    t = np.arange(n) / rate
    since = np.mod(t, period)
    hz = BEEP_BASE_HZ + BEEP_STEP_HZ * np.floor(t / period + 1e-9)
    beep = since < BEEP_S
    pcm = np.where(beep, BEEP_LEVEL * np.sin(2 * np.pi * hz * since), 0.0)
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(pcm * 32767).astype("<i2").tobytes())
    return video, audio


@dataclass
class Marks:
    """Flash and beep onsets (seconds, the file's timeline) and their pairs."""

    flashes: list[float]
    beeps: list[float]
    #: Each beep's marker index (from its pitch), in the order of ``beeps``.
    beep_ids: list[int]
    #: (beep time, beep - flash, marker index) for each beep with a flash within
    #: ``max_offset``.
    pairs: list[tuple[float, float, int]]
    duration: float
    #: Longest run of digital silence (all samples zero) inside the audio, seconds.
    longest_silence: float


def _flash_onsets(times: list[float], white: list[bool]) -> list[float]:
    out, prev = [], False
    for t, w in zip(times, white, strict=True):
        if w and not prev:
            out.append(t)
        prev = w
    return out


def _beep_onsets(audio: np.ndarray, start: float, rate: int, quiet: float) -> list[float]:
    if not len(audio):
        return []
    level = np.abs(audio)
    peak = float(np.percentile(level, 99.9))
    if peak <= 0:
        return []
    loud = np.flatnonzero(level > 0.35 * peak)
    out: list[float] = []
    last = -math.inf
    for i in loud:
        t = start + i / rate
        if t - last > quiet:
            out.append(t)
        last = t
    return out


def _beep_id(audio: np.ndarray, onset: int, rate: int) -> int:
    """The marker index of the beep starting at sample ``onset`` (from its pitch)."""
    window = audio[onset + rate // 200 : onset + rate // 200 + int(0.04 * rate)]
    if len(window) < rate // 100:
        return -1
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window)), n=1 << 15))
    hz = float(np.argmax(spectrum)) * rate / (1 << 15)
    return round((hz - BEEP_BASE_HZ) / BEEP_STEP_HZ)


def _longest_zero_run(audio: np.ndarray, rate: int) -> float:
    zero = np.concatenate([[False], audio == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    runs = edges[1::2] - edges[0::2]
    return float(runs.max()) / rate if len(runs) else 0.0


def measure(
    path: Path,
    *,
    region: tuple[float, float, float, float] | None = None,
    max_offset: float = 0.45,
    white_share: float = 0.5,
) -> Marks:
    """Decode ``path`` and find its flash/beep markers.

    ``region``: (x, y, w, h) as fractions of the picture where the flashing
    picture is (a tile of a composite); default the whole picture. A frame is a
    flash when more than ``white_share`` of the region is near white.
    """
    times: list[float] = []
    white: list[bool] = []
    chunks: list[np.ndarray] = []
    audio_start: float | None = None
    rate = 48000
    with av.open(str(path)) as container:
        streams = [*container.streams.video[:1], *container.streams.audio[:1]]
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                    continue
                t = frame.time  # seconds (None: no timestamp)
                if t is None:
                    continue
                if isinstance(frame, av.VideoFrame):
                    gray = frame.to_ndarray(format="gray")
                    if region is not None:
                        h, w = gray.shape
                        x0, y0 = int(region[0] * w), int(region[1] * h)
                        gray = gray[y0 : y0 + int(region[3] * h), x0 : x0 + int(region[2] * w)]
                    times.append(t)
                    white.append(float((gray > 180).mean()) > white_share)
                elif isinstance(frame, av.AudioFrame):
                    data = frame.to_ndarray().astype(np.float32)
                    if frame.format.name.startswith("s16"):
                        data /= 32768.0
                    if frame.format.is_planar:
                        mono = data.mean(axis=0)
                    else:
                        mono = data.reshape(-1, frame.layout.nb_channels).mean(axis=1)
                    if audio_start is None:
                        audio_start, rate = t, frame.sample_rate
                    chunks.append(mono)
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    flashes = _flash_onsets(times, white)
    start = audio_start or 0.0
    beeps = _beep_onsets(audio, start, rate, quiet=0.3)
    ids = [_beep_id(audio, round((b - start) * rate), rate) for b in beeps]
    pairs = []
    for b, index in zip(beeps, ids, strict=True):
        near = min(flashes, key=lambda f: abs(b - f), default=None)
        if near is not None and abs(near - b) <= max_offset:
            pairs.append((b, b - near, index))
    inner = audio[rate : max(rate, len(audio) - rate)]  # not the first and last second
    return Marks(
        flashes=flashes,
        beeps=beeps,
        beep_ids=ids,
        pairs=pairs,
        duration=times[-1] if times else 0.0,
        longest_silence=_longest_zero_run(inner, rate),
    )


@dataclass
class Summary:
    """Offsets' percentiles of their absolute values (ms), the largest, and the drift."""

    count: int
    median_ms: float
    p50_abs_ms: float
    p95_abs_ms: float
    max_abs_ms: float
    drift_ms_per_min: float

    def __str__(self) -> str:
        return (
            f"{self.count} pairs: median {self.median_ms:+.1f} ms, |offset| p50 "
            f"{self.p50_abs_ms:.1f} ms, p95 {self.p95_abs_ms:.1f} ms, max "
            f"{self.max_abs_ms:.1f} ms, drift {self.drift_ms_per_min:+.2f} ms/min"
        )


def compare(
    recorded: list[tuple[float, float, int]],
    reference: list[tuple[float, float, int]],
    loop: float = BEEPS,
) -> list[tuple[float, float]]:
    """(time, recorded offset - the reference's offset of the same beep) for each beep
    of ``recorded`` that ``reference`` has too.

    Beeps are told apart by pitch; the audio file repeats its pitches every
    ``loop`` seconds, so the two timelines are lined up first (the median of the
    first beeps' time differences) and each beep is matched with the reference's
    beep of the same pitch nearest to it on that common timeline.
    """
    by_id: dict[int, list[tuple[float, float]]] = {}
    for t, offset, index in reference:
        by_id.setdefault(index, []).append((t, offset))
    shifts = [
        min((t - tr for tr, _ in by_id[index]), key=abs)
        for t, _, index in recorded[:10]
        if index in by_id
    ]
    if not shifts:
        return []
    shift = statistics.median(shifts)
    out = []
    for t, offset, index in recorded:
        best = min(by_id.get(index, []), key=lambda c: abs(t - c[0] - shift), default=None)
        if best is not None and abs(t - best[0] - shift) < loop / 4:
            out.append((t, offset - best[1]))
    return out


def summary(pairs: list[tuple[float, float]] | list[tuple[float, float, int]]) -> Summary:
    """Percentiles of the offsets of ``pairs`` ((time, offset, ...) in seconds)."""
    if not pairs:
        raise ValueError("no flash/beep pairs")
    t = np.array([p[0] for p in pairs])
    off = np.array([p[1] for p in pairs])
    slope = float(np.polyfit(t, off, 1)[0]) if len(pairs) >= 2 and np.ptp(t) > 0 else 0.0
    a = np.abs(off) * 1000
    return Summary(
        count=len(pairs),
        median_ms=float(np.median(off)) * 1000,
        p50_abs_ms=float(np.percentile(a, 50)),
        p95_abs_ms=float(np.percentile(a, 95)),
        max_abs_ms=float(a.max()),
        drift_ms_per_min=slope * 60 * 1000,
    )


# --- a Chromium participant with the markers, recorded (the test and the benchmark) -----

#: The page records its own camera + microphone. PCM audio, not Opus: Chromium stamps
#: an Opus packet of MediaRecorder's (60 ms) with the capture time of its last 10 ms
#: (audio_track_opus_encoder.cc), 50 ms late; PCM buffers carry their own. The blob
#: stays in the page (``window.recfwSelf``) and is read in slices (SELF_SLICE_JS).
SELF_RECORD_JS = """
async (ms) => {
  const type = "video/webm;codecs=vp8,pcm";
  if (!MediaRecorder.isTypeSupported(type)) throw new Error(type + " is not supported");
  const rec = new MediaRecorder(window.recfwState.local, {mimeType: type});
  const chunks = [];
  rec.ondataavailable = (e) => chunks.push(e.data);
  const stopped = new Promise((resolve) => (rec.onstop = resolve));
  rec.start(1000);
  await new Promise((resolve) => setTimeout(resolve, ms));
  rec.stop();
  await stopped;
  window.recfwSelf = new Blob(chunks);
  return window.recfwSelf.size;
}
"""
SELF_SLICE_JS = """
async ([start, end]) => {
  const bytes = new Uint8Array(await window.recfwSelf.slice(start, end).arrayBuffer());
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}
"""
SLICE = 8 << 20


def marker_room_config(width: int = 320, height: int = 180, fps: int = 15):
    """A local-folder (``recordings``) config whose recording starts with 2 people."""
    from ..config import parse_config

    return parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": "automatic-2nd-participant",
                "destination": {"provider": "local", "bucket": "recordings", "fileFormat": "mkv"},
            },
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "iceAddresses": ["127.0.0.1"],
                "videoWidth": width,
                "videoHeight": height,
                "videoFps": fps,
            },
        },
        environ={},
    )


async def record_marker_meeting(
    folder: Path,
    plugins,
    *,
    seconds: float,
    chromium: str,
    chromium_args: list[str],
    host_secret: str = "sync-marks-host-secret",
) -> tuple[list[Path], Path]:
    """Record a 2-person meeting: a Chromium page whose fake devices play the markers,
    and a quiet synthetic participant; ``recfw worker`` records it (as ``recfw run``).

    The page records its own camera and microphone with ``MediaRecorder`` for
    ``seconds`` meanwhile. Returns ``(the recordings, the page's own .webm)``: one
    file, or more if a recorder died and a new one recorded on (a dead one's spool
    file is in the list too). Needs playwright and a Chromium; the working
    directory gets ``recordings/``.
    """
    import base64
    import time

    from playwright.async_api import async_playwright

    from ..rooms import Participant
    from ..server import RoomServer
    from ..server.client import HeadlessParticipant
    from ..server.ice import unrestrict_host_addresses

    video_file, audio_file = write_fake_media(folder / "fake")
    server = RoomServer(
        marker_room_config(),
        plugins,
        host_secret=host_secret,
        spool_dir=folder / "spool",
        supervise=True,
    )
    await server.start()
    quiet = plugins.get("sources", "synthetic").create(
        Participant(id="quiet", display_name="Quiet"),
        {"width": 160, "height": 90, "fps": 15, "marker_interval_s": 0, "color": [30, 30, 60]},
    )

    async def until(predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.1)

    own = folder / "self.webm"
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium,
                args=[
                    *chromium_args,
                    f"--use-file-for-fake-video-capture={video_file}",
                    f"--use-file-for-fake-audio-capture={audio_file}",
                ],
            )
            visitor_link, host_link = server.links("sync")
            context = await browser.new_context(viewport={"width": 800, "height": 450})
            page = await context.new_page()
            await page.goto(f"{host_link}&name=Chromium")
            await page.wait_for_function(
                "window.recfwState && window.recfwState.server && "
                "window.recfwState.server.connectionState === 'connected'",
                timeout=120000,
            )
            other = HeadlessParticipant(visitor_link, quiet, name="Quiet")
            await other.connect(timeout=120)  # a busy machine answers slowly
            try:
                await page.wait_for_function(
                    "document.body.dataset.recording === 'started'", timeout=120000
                )
                size = await page.evaluate(SELF_RECORD_JS, int(seconds * 1000))
                with open(own, "wb") as out:
                    for start in range(0, size, SLICE):
                        data = await page.evaluate(SELF_SLICE_JS, [start, start + SLICE])
                        out.write(base64.b64decode(data))
                await context.close()
            finally:
                await other.close()
            await browser.close()
        await until(lambda: "sync" not in server.rooms, 300, "the room to close")
        (closed,) = [r for r in server.closed_rooms if r.name == "sync"]
        await closed.engine.wait_stored()
        recordings = []
        for session in closed.engine.sessions:
            if session.stored is not None:
                recordings.append(Path(session.stored.location.removeprefix("file://")))
            elif session.spool_path is not None and session.spool_path.exists():
                recordings.append(session.spool_path)
        if not recordings:
            errors = [s.error for s in closed.engine.sessions]
            raise RuntimeError(f"nothing was recorded: {errors}")
    finally:
        await server.close()
        unrestrict_host_addresses()
    return recordings, own
