"""``recfw worker [JOB]`` / ``recfw worker --queue URL``: a recorder (see docs/architecture.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import click

from ..errors import RecfwError
from .options import config_option

HELP = "Record one room (a JSON job on stdin or in a file), or take jobs from a queue (--queue)."


@click.command("worker", help=HELP, short_help=HELP)
@click.argument("job", default="-", metavar="[JOB]")
@click.option(
    "--queue",
    "queue_url",
    default=None,
    metavar="URL",
    help="Take recording jobs from this Redis (redis://[:password@]host:port/db) instead of "
    "recording one JOB. Default: RECFW_QUEUE_URL, else [workers] queue of --config (both "
    "keep a password off the command line).",
)
@click.option(
    "--capacity",
    type=click.FloatRange(0.05, 1024),
    default=None,
    help="Cores this worker offers recordings (default: [workers] capacity, else 80% of "
    "this machine's cores). A job is taken only if its cost fits what is left.",
)
@click.option(
    "--name",
    default=None,
    help="This worker's name in the queue (default: the host name; keep it the same across "
    "restarts so a restarted worker stores what its dead recorders left).",
)
@click.option(
    "--spool-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where this worker's recorders write their files (default: <data dir>/spool).",
)
@click.option(
    "--log-level",
    type=click.Choice(("debug", "info", "warning", "error"), case_sensitive=False),
    default=None,
    help="Log messages from this level up, to stderr (default: warning; recfw -v: info).",
)
@config_option("the embedded default (the database and secret key in .recfw/).")
def worker_command(
    job: str,
    queue_url: str | None,
    capacity: float | None,
    name: str | None,
    spool_dir: Path | None,
    log_level: str | None,
    config_path: Path | None,
) -> None:
    """Record one room as its recorder process, or take jobs from a Redis queue.

    \b
    Without --queue: JOB is a JSON file, or "-" (the default) for the first line
    of stdin. `recfw run` starts one such worker per recording and passes the job
    on stdin: the room's URL, the recording id, the spool file and a one-time
    recorder token (a secret: never on the command line). The worker joins the
    room over WebRTC with role "recorder", records everyone into the spool file,
    and reports its state as "RECFW-STATE {...}" lines on stdout. A line
    {"type": "stop"} on stdin (or stdin closing) finishes the file.

    \b
    With --queue (or [workers] queue / RECFW_QUEUE_URL): a long-running worker
    takes recording jobs that `recfw run` puts on the Redis stream, while their
    estimated cost fits its free capacity (see `recfw workers`), runs one
    recorder process per job, and stores each finished file to the recording's
    destination, read from the control plane's database: give it the same
    --config (database, secret key) as `recfw run`. Ctrl-C (SIGTERM) finishes and
    stores the running recordings, then exits.
    """
    if log_level is not None:
        logging.getLogger().setLevel(log_level.upper())
    if queue_url is None:
        from ..config import load_config

        queued = load_config(config_path).workers.queue  # or RECFW_QUEUE_URL
        if queued is not None:
            queue_url = queued.reveal()
    if queue_url is not None:
        raise SystemExit(
            asyncio.run(_serve_queue(queue_url, capacity, name, spool_dir, config_path))
        )
    from ..worker.client import run_job
    from ..worker.job import RecordingJob

    if job == "-":
        text = sys.stdin.readline()
        commands = True
    else:
        try:
            text = Path(job).read_text()
        except OSError as exc:
            raise RecfwError(f"JOB: cannot read {job}: {exc.strerror}") from None
        commands = False
    parsed = RecordingJob.from_json(text)
    raise SystemExit(asyncio.run(run_job(parsed, sys.stdout, commands=commands)))


async def _serve_queue(
    url: str,
    capacity: float | None,
    name: str | None,
    spool_dir: Path | None,
    config_path: Path | None,
) -> int:
    from ..control.db import Database, data_dir
    from ..control.events import ControlEvents
    from ..errors import FieldError, SettingsError
    from ..queue.cost import default_capacity
    from ..queue.redisq import JobQueue
    from ..queue.settings import queue_url_error, shown_queue_url
    from ..queue.worker import QueueWorker, default_name, node_of
    from ..settings import effective
    from .options import load_effective

    problem = queue_url_error(url)
    if problem is not None:
        raise SettingsError([FieldError("--queue", problem)])
    config, plugins, _ = load_effective(config_path)
    name = name or default_name()
    capacity = capacity or config.workers.capacity or default_capacity()
    db = Database.open(config)
    events = ControlEvents(
        db,
        node=node_of(name),
        default_destination=effective(config.recording, None, plugins).destination,
    )
    queue = JobQueue(url)
    worker = QueueWorker(
        queue,
        name=name,
        capacity=capacity,
        spool_dir=(spool_dir or data_dir(config) / "spool").resolve(),
        settings=config.workers,
        plugins=plugins,
        db=db,
        events=events,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    click.echo(
        f"recfw worker {name}: taking jobs from {shown_queue_url(url)} "
        f"(capacity {capacity:.2f} cores; database {db.shown_url()})",
        err=True,
    )
    logging.getLogger(__name__).info("worker %s started", name)
    try:
        await worker.run(stop)
    finally:
        await queue.close()
        db.dispose()
    return 0
