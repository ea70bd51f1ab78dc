"""``recfw join`` as a real subprocess against a real room server."""

from __future__ import annotations

import asyncio
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RECFW = str(Path(sys.executable).parent / "recfw")


def _make_clip(path: Path, seconds: float = 2.0) -> Path:
    """A small mkv with moving colour bars and a 440 Hz tone."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libvpx", rate=15)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        audio = out.add_stream("libopus", rate=48000)
        audio.layout = "stereo"
        for i in range(int(seconds * 15)):
            img = np.zeros((240, 320, 3), np.uint8)
            img[:, :, 0] = (np.arange(320) + i * 8) % 256
            img[:, :, 1] = 160
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, 15)
            for packet in video.encode(frame):
                out.mux(packet)
        t = np.arange(int(seconds * 48000)) / 48000
        tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        for start in range(0, len(tone), 960):
            chunk = tone[start : start + 960]
            data = np.repeat(chunk, 2).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
            frame.sample_rate = 48000
            frame.pts = start
            for packet in audio.encode(frame):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)
    return path


async def test_recfw_join_sends_a_file_over_webrtc(make_server, tmp_path):
    server = await make_server("none")
    visitor_link, _ = server.links("standup")
    clip = _make_clip(tmp_path / "clip.mkv")
    proc = await asyncio.create_subprocess_exec(
        RECFW,
        "join",
        visitor_link,
        "--file",
        str(clip),
        "--name",
        "Clip",
        "--duration",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        seen = None
        for _ in range(150):
            room = server.rooms.get("standup")
            clients = list(room.clients.values()) if room else []
            if clients and clients[0].peer._first_video.is_set() and clients[0].peer.audio:
                seen = clients[0]
                break
            await asyncio.sleep(0.1)
        assert seen is not None, "the joined participant's video never reached the server"
        assert seen.participant.display_name == "Clip" and seen.participant.role == "visitor"
        assert seen.peer.connection_state == "connected"
    finally:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "joined room standup as visitor" in text and "left the room" in text
    # The room is gone once the participant left.
    for _ in range(50):
        if "standup" not in server.rooms:
            break
        await asyncio.sleep(0.1)
    assert "standup" not in server.rooms


async def test_recfw_join_with_a_bad_url_names_the_problem():
    proc = await asyncio.create_subprocess_exec(
        RECFW,
        "join",
        "ftp://nowhere/room",
        "--duration",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "room URL" in err.decode()
