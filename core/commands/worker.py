"""``recfw worker [JOB]``: a recorder process (started by ``recfw run``; see docs/rooms.md)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from ..errors import RecfwError

HELP = "Record one room as its recorder process (a JSON job on stdin or in a file)."


@click.command("worker", help=HELP, short_help=HELP)
@click.argument("job", default="-", metavar="[JOB]")
def worker_command(job: str) -> None:
    """Record one room as its recorder process (a JSON job on stdin or in a file).

    \b
    JOB is a JSON file, or "-" (the default) for the first line of stdin.
    `recfw run` starts one worker per recording and passes the job on stdin: the
    room's URL, the recording id, the spool file and a one-time recorder token
    (a secret: never on the command line). The worker joins the room over
    WebRTC with role "recorder", records everyone into the spool file, and
    reports its state as "RECFW-STATE {...}" lines on stdout. A line
    {"type": "stop"} on stdin (or stdin closing) finishes the file.
    """
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
