"""``recfw join URL``: a headless participant (synthetic or a file) over real WebRTC."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import click

from ..errors import RecfwError
from ..rooms import Participant, Role
from ..sources import ParticipantMedia

log = logging.getLogger(__name__)


def make_media(participant: Participant, file: Path | None) -> ParticipantMedia:
    """The participant's tracks: from ``file`` (looped), or the ``synthetic`` source."""
    if file is not None:
        from aiortc.contrib.media import MediaPlayer

        try:
            player = MediaPlayer(str(file), loop=True)
        except Exception as exc:  # PyAV raises its own error types for unreadable files
            raise RecfwError(f"--file {file}: cannot open it as media: {exc}") from None
        return ParticipantMedia(participant, video=player.video, audio=player.audio)
    from ..manager import load_plugins

    source = load_plugins().get("sources", "synthetic")
    return source.create(participant, {})


async def join(
    url: str,
    name: str,
    duration: float,
    file: Path | None,
    record: bool,
    receive: bool,
    timeout: float = 15.0,
) -> int:
    from ..server.client import HeadlessParticipant, parse_room_url

    room_url = parse_room_url(url)
    participant = Participant(
        id=f"join-{uuid.uuid4().hex[:8]}",
        display_name=name,
        role=Role.HOST if room_url.room_key else Role.VISITOR,
    )
    media = make_media(participant, file)

    last_status = ["idle"]

    def on_message(message: dict) -> None:
        kind = message.get("type")
        if kind == "recording" and message.get("recording") != last_status[0]:
            last_status[0] = message["recording"]
            click.echo(f"recording {message['recording']}")
        elif kind == "error":
            click.echo(f"refused: {message.get('message')}", err=True)

    try:
        client = HeadlessParticipant(url, media, name=name, receive=receive, on_message=on_message)
    except BaseException:
        media.stop()
        raise
    status = 0
    try:
        await client.connect(timeout)  # a RecfwError (one clear line) if there is no answer
        result = client.result
        click.echo(f"joined room {room_url.room} as {result.role} ({result.participant_id})")
        if record:
            try:
                await client.command("start_recording")
            except RecfwError:
                status = 1
        await asyncio.sleep(duration)
        if record and status == 0:
            try:
                await client.command("stop_recording")
            except RecfwError:
                status = 1
    finally:
        await client.close()
    click.echo("left the room")
    return status


@click.command("join")
@click.argument("url")
@click.option("--name", default="recfw join", show_default=True, help="Display name.")
@click.option(
    "--duration",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.5, 86400.0),
    help="Seconds to stay in the room.",
)
@click.option(
    "--file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Send this media file (looped) instead of a synthetic participant.",
)
@click.option(
    "--record",
    is_flag=True,
    help="Start a recording on joining and stop it on leaving (needs the host link).",
)
@click.option("--receive", is_flag=True, help="Also receive the others' media (and discard it).")
@click.option(
    "--timeout",
    default=15.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600.0),
    help="Seconds to wait for the room server's answer and for the media connection.",
)
def join_command(
    url: str,
    name: str,
    duration: float,
    file: Path | None,
    record: bool,
    receive: bool,
    timeout: float,
) -> None:
    """Join the room at URL with a synthetic (or --file) participant over WebRTC.

    Use the host link (``?roomKey=...``) to join as a host. For demos, load
    tests and the test suite.
    """
    raise SystemExit(asyncio.run(join(url, name, duration, file, record, receive, timeout)))
