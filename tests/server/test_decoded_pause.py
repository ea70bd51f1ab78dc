"""DecodedTrack.pause/resume: a paused track takes and decodes nothing; it resumes at a keyframe.

Real VP8 (libvpx, pre-encoded) goes into a real :class:`ReceiverTap` as aiortc's
jitter buffer would hand it over; only the network end (who a keyframe request
goes to) is a stand-in that records the requests.
"""

from __future__ import annotations

import asyncio

from recfw.server.aiortc_tap import ReceiverTap
from recfw.server.encoded_source import encode_vp8
from recfw.server.forward import DecodedTrack
from recfw.testing.synthetic import identify, picture


class _Receiver:
    """The network end of a receiver: remembers that keyframes were asked for."""

    def __init__(self) -> None:
        self.plis = 0

    def getSynchronizationSources(self):  # noqa: N802 - aiortc's name
        self.plis += 1
        return []


async def test_a_paused_track_decodes_nothing_and_resumes_at_a_keyframe():
    pictures = [picture(7, 160, 120, i, 10) for i in range(10)]
    payloads = encode_vp8(160, 120, 10, 5, bitrate=200_000, pictures=pictures)  # keys: 0, 5
    tap = ReceiverTap(_Receiver(), "video")  # type: ignore[arg-type]
    track = DecodedTrack(tap)

    def send(i: int) -> None:
        tap._frame("video/VP8", payloads[i % 10], 3000 * i)

    for i in range(3):
        send(i)
    frames = [await asyncio.wait_for(track.recv(), 10) for _ in range(3)]
    assert track.decoded == 3 and identify(frames[0].to_ndarray(format="rgb24")) == 7

    waiting = asyncio.ensure_future(track.recv())  # a recv() waiting when it is paused
    await asyncio.sleep(0)
    track.pause()
    assert track.paused and tap.subscribers == 0
    for i in range(3, 9):
        send(i)
    await asyncio.sleep(0.1)
    assert not waiting.done() and track.decoded == 3  # nothing taken, nothing decoded

    track.resume()
    assert not track.paused and tap.subscribers == 1
    await asyncio.sleep(0.05)
    assert tap.receiver.plis >= 1  # a keyframe was asked for
    send(9)  # not a keyframe: skipped
    send(10)  # the loop starts again: a keyframe
    frame = await asyncio.wait_for(waiting, 10)
    assert track.decoded == 4 and frame.pts == 30000  # the keyframe, decoded
    assert identify(frame.to_ndarray(format="rgb24")) == 7

    track.pause()
    stopped = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()  # a stop wakes a paused recv(): the track has ended
    try:
        await asyncio.wait_for(stopped, 5)
    except Exception as exc:  # noqa: BLE001
        assert type(exc).__name__ == "MediaStreamError"
    else:
        raise AssertionError("recv() on a stopped track returned a frame")
