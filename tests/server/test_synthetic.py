"""recfw.testing.synthetic: cheap participants with checkable pictures, in a real room."""

from __future__ import annotations

import asyncio
import time

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
import numpy as np
import pytest
from recfw.testing.synthetic import (
    PALETTE,
    SyntheticCrowd,
    SyntheticParticipant,
    identify,
    participant_colour,
    picture,
    synthetic_media,
)


def _decode_vp8(payloads) -> list[np.ndarray]:
    codec = av.CodecContext.create("libvpx", "r")
    out = []
    for data in payloads:
        for frame in codec.decode(av.Packet(data)):
            out.append(frame.to_ndarray(format="rgb24"))
    return out


def test_every_picture_says_who_it_is_at_any_scale():
    assert len(set(PALETTE)) == len(PALETTE) == 24
    for index in (0, 1, 7, 23, 24, 25, 200, 255):
        rgb = picture(index, 320, 240, frame=3)
        assert identify(rgb) == index
        for w, h in ((64, 48), (152, 114), (600, 450)):
            scaled = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(w, h)
            assert identify(scaled.to_ndarray(format="rgb24")) == index, (index, w, h)
    # someone else's colour with this number's bits is not this participant
    fake = picture(3, 320, 240)
    fake[: int(240 * 0.3)] = participant_colour(4)
    assert identify(fake) is None
    assert identify(np.full((240, 320, 3), 128, np.uint8)) is None
    with pytest.raises(ValueError, match="index"):
        picture(256, 320, 240)


def test_the_pre_encoded_video_decodes_to_the_participant_with_a_moving_marker():
    media = synthetic_media(11, width=160, height=120, frames=10)
    frames = _decode_vp8(media.video.payloads)
    assert len(frames) == 10
    assert {identify(f) for f in frames} == {11}
    # textured (as big as a camera's frames, for benchmarks): still readable
    textured = synthetic_media(12, width=320, height=240, frames=4, texture=True)
    assert {identify(f) for f in _decode_vp8(textured.video.payloads)} == {12}
    assert sum(map(len, textured.video.payloads)) > 3 * sum(map(len, media.video.payloads))
    tops = [f[: 120 // 40 + 10].astype(int) for f in frames]
    assert any(np.abs(a - b).mean() > 1 for a, b in zip(tops, tops[1:], strict=False))


def test_speaking_switches_the_audio_between_silence_and_the_tone():
    media = synthetic_media(2)
    audio = media.audio

    def rms(payloads) -> float:
        codec = av.CodecContext.create("libopus", "r")
        pcm = [f.to_ndarray() for p in payloads for f in codec.decode(av.Packet(p))]
        return float(np.sqrt(np.mean(np.concatenate(pcm, axis=None) ** 2)))

    assert not audio.speaking and audio.payloads is audio.silence
    assert rms(audio.payloads) < 0.001
    audio.speak()
    assert audio.payloads is audio.tone
    assert rms(audio.payloads) > 0.1  # float samples: about 8000/32768/sqrt(2)
    audio.speak(False)
    assert audio.payloads is audio.silence


@pytest.fixture
def decoders_created(monkeypatch):
    created = []
    real = aiortc.rtcrtpreceiver.get_decoder

    def get_decoder(codec):
        created.append(codec)
        return real(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", get_decoder)
    encoders = []
    real_encoder = aiortc.rtcrtpsender.get_encoder

    def get_encoder(codec):
        encoders.append(codec)
        return real_encoder(codec)

    monkeypatch.setattr(aiortc.rtcrtpsender, "get_encoder", get_encoder)
    return created, encoders


async def test_a_crowd_joins_the_room_and_a_viewer_gets_each_picture_and_tone_encoded(
    make_server, decoders_created
):
    server = await make_server("none")
    visitor_link, _ = server.links("crowd")
    async with SyntheticCrowd(visitor_link, 3, first=5) as crowd:
        room = server.rooms["crowd"]
        assert len(room.clients) == 3
        names = sorted(c.participant.display_name for c in room.clients.values())
        assert names == ["P5", "P6", "P7"]
        async with SyntheticParticipant(visitor_link, 9, receive=True) as viewer:
            crowd[1].speak()
            deadline = time.monotonic() + 20
            seen: dict[int, np.ndarray] = {}
            tones: set[bytes] = set(crowd[1].audio.tone)
            heard_tone = False
            subs = [(v.subscribe(1000), a.subscribe(1000)) for v, a in viewer.received]
            while (len(seen) < 3 or not heard_tone) and time.monotonic() < deadline:
                for video_sub, audio_sub in subs:
                    while not video_sub.queue.empty():
                        frame = video_sub.queue.get_nowait()
                        if frame is not None and frame.keyframe:
                            (rgb,) = _decode_vp8([frame.data])  # the test decodes, not the client
                            who = identify(rgb)
                            if who is not None:
                                seen[who] = rgb
                    while not audio_sub.queue.empty():
                        frame = audio_sub.queue.get_nowait()
                        heard_tone = heard_tone or (frame is not None and frame.data in tones)
                await asyncio.sleep(0.1)
            assert sorted(seen) == [5, 6, 7]
            assert heard_tone, "participant 6's tone never reached the viewer"
            assert all(rgb.shape == (240, 320, 3) for rgb in seen.values())
    # nothing here decoded or encoded media: the client sends bytes and taps what it gets
    created, encoders = decoders_created
    assert created == [] and encoders == []
