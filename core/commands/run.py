"""``recfw run``: serve rooms and record them per the configured settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import click
from rich.console import Console

from .options import config_option, describe_destination, load_effective
from .spool import warn_about_waiting

log = logging.getLogger(__name__)

LOG_LEVELS = ("debug", "info", "warning", "error")


async def serve(
    config_path: Path | None,
    host: str | None,
    port: int | None,
    rooms: tuple[str, ...],
    access_log: bool = False,
    in_process: bool = False,
) -> int:
    from ..control.runtime import ControlRuntime
    from ..control.startup import open_control_plane
    from ..server import RoomServer

    config, plugins, _ = load_effective(config_path)  # every settings error before serving
    db = open_control_plane(config)  # migrated; [recording] seeds the organization defaults
    # The [[webhooks]] endpoints, the webhook worker and the background uploader of
    # kept recordings.
    control = ControlRuntime.open(config, plugins, db=db)
    reported: set[int] = set()

    def done(room, session) -> None:
        reported.add(id(session))
        if session.stored is not None:
            click.echo(f"stored {session.stored.location} (room {room.name})")
        else:
            click.echo(f"recording failed: {session.error} (kept at {session.kept_at})", err=True)

    server = RoomServer(
        config,
        plugins,
        on_session_done=done,
        db=db,
        control=control.events,
        access_log=access_log,
        supervise=not in_process,
    )
    base = await server.start(host, port)
    await control.start()
    settings = server.settings
    click.echo(f"recfw room server on {base}")
    click.echo(f"recording: trigger {settings.start_trigger}, {describe_destination(settings)}")
    click.echo(f"ICE addresses offered: {', '.join(server.ice_addresses)}")
    click.echo(f"database: {db.shown_url()} ({db.kind})")
    if server.job_queue is not None:
        await _show_queue(server.job_queue)
    click.echo(
        f"meetings API: POST {base}/v1/meetings (Authorization: Bearer <key>; "
        "make keys with `recfw keys create`)"
    )
    click.echo(f"dashboard: {base}/dashboard (log in with a `recfw keys create --admin` key)")
    warn_about_waiting(Console(soft_wrap=True, highlight=False))
    for name in rooms:
        visitor, host_link = server.links(name)
        click.echo(f"\nroom {name}\n  visitor link: {visitor}\n  host link:    {host_link}")
    click.echo("\nEvery /<name> is a room; --room NAME prints its links. Ctrl-C stops.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    click.echo("stopping: finishing and storing any running recording ...")
    await server.close()
    await control.stop()  # pending webhooks wait in the database for the next start
    control.close()  # disposes of the database too
    failed = 0
    for room in server.closed_rooms:
        for session in room.engine.sessions:
            if id(session) not in reported:
                done(room, session)
            failed += session.stored is None
    return 1 if failed else 0


async def _show_queue(queue) -> None:
    """Where recording jobs go, and whether any worker is there to take them."""
    from ..errors import RecfwError

    try:
        await queue.ping()
        workers = await queue.workers()
    except RecfwError as exc:
        click.echo(f"recording jobs: {queue.shown_url} (UNREACHABLE: {exc})", err=True)
        return
    shown = ", ".join(w["name"] for w in workers) or "none yet: start `recfw worker --queue`"
    click.echo(f"recording jobs: Redis queue {queue.shown_url} (workers: {shown})")


@click.command("run")
@config_option("record to ./recordings as mkv, automatic start.")
@click.option("--host", default=None, help="Address to listen on (default: [server] host).")
@click.option(
    "--port", default=None, type=click.IntRange(0, 65535), help="Port (default: [server] port)."
)
@click.option(
    "--room",
    "rooms",
    multiple=True,
    default=("meeting",),
    show_default=True,
    help="Room(s) whose links to print (repeatable).",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=None,
    help="Log messages from this level up, to stderr (default: warning; recfw -v: info).",
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Log one line per HTTP request (client, method, path without query, status).",
)
@click.option(
    "--in-process",
    is_flag=True,
    help="Record in this process instead of one `recfw worker` process per recording "
    "(a crash of a recording then takes the server down with it).",
)
def run_command(
    config_path: Path | None,
    host: str | None,
    port: int | None,
    rooms: tuple[str, ...],
    log_level: str | None,
    access_log: bool,
    in_process: bool,
) -> None:
    """Serve room pages and record real meetings over WebRTC.

    Prints each room's visitor link and host link (with ?roomKey=...; only a
    host may start or stop a recording). Open a link in a browser to join.
    Set RECFW_HOST_SECRET to keep host links valid across restarts.

    Each recording is made by its own `recfw worker` process, which joins the
    room as the recorder; if one dies, its file is kept and stored, the
    recording is reported failed, and a new recorder records on into a new file.

    With [workers] queue (or RECFW_QUEUE_URL) in the config, recordings are
    jobs on that Redis instead, made by `recfw worker --queue` processes on any
    machine (see `recfw workers` and docs/architecture.md).
    """
    if log_level is not None:
        logging.getLogger().setLevel(log_level.upper())
    raise SystemExit(asyncio.run(serve(config_path, host, port, rooms, access_log, in_process)))
