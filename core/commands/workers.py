"""``recfw workers``: the queue's recorder workers, their load and jobs (docs/operations.md)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from ..errors import FieldError, RecfwError, SettingsError
from .options import config_option

HELP = "List the queue's recorder workers: load, capacity, jobs, and the admission rule."


@click.command("workers", help=HELP, short_help=HELP)
@click.option(
    "--queue",
    "queue_url",
    default=None,
    metavar="URL",
    help="The Redis of the job queue (default: RECFW_QUEUE_URL, else [workers] queue).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the workers as JSON.")
@config_option("the embedded default (RECFW_QUEUE_URL must then be set).")
def workers_command(queue_url: str | None, as_json: bool, config_path: Path | None) -> None:
    """List the recorder workers taking jobs from the queue, with the admission rule.

    \b
    Each worker writes a heartbeat to Redis every [workers] heartbeat seconds;
    a worker whose heartbeat expired ([workers] deadAfter) is not listed (its
    jobs are reclaimed by another worker). For each worker: its load (the
    estimated cores of its running recordings), its capacity, the jobs it runs
    (room, cost, state) and the machine's load average. Also shown: jobs
    waiting for a worker and jobs taken.

    \b
    Admission: a worker takes a job when cost <= capacity - load, where
    cost = 0.38 + 0.16 x people x (width x height x fps) / (1280 x 720 x 30)
    cores (see docs/architecture.md); a job nobody takes within
    [workers] admissionTimeout seconds fails (recording.failed says why).
    """
    from ..config import load_config
    from ..queue.settings import queue_url_error

    if queue_url is None:
        configured = load_config(config_path).workers.queue
        if configured is None:
            raise SettingsError(
                [
                    FieldError(
                        "workers.queue",
                        "is not set (use --queue, RECFW_QUEUE_URL or [workers] queue in --config)",
                    )
                ]
            )
        queue_url = configured.reveal()
    problem = queue_url_error(queue_url)
    if problem is not None:
        raise SettingsError([FieldError("--queue", problem)])
    workers, backlog, shown = asyncio.run(_read(queue_url))
    if as_json:
        click.echo(json.dumps({"queue": shown, "workers": workers, **backlog}, indent=2))
        return
    from ..queue.cost import RULE

    click.echo(f"queue {shown}: {backlog['waiting']} job(s) waiting, {backlog['pending']} taken")
    click.echo(f"admission: {RULE}")
    if not workers:
        click.echo("no worker is running (no heartbeat)")
        return
    for w in workers:
        click.echo(_line(w))
        for job in w.get("jobs") or ():
            click.echo(
                f"    room {job.get('room')}: {job.get('state')}, {float(job.get('cost', 0)):.2f} "
                f"cores, {job.get('people')} people (job {job.get('jobId')})"
            )


def _line(w: dict[str, Any]) -> str:
    capacity = float(w.get("capacity") or 0)
    load = float(w.get("load") or 0)
    loadavg = w.get("loadavg")
    machine = (
        f", load average {loadavg:.2f} on {w.get('cores')} cores" if loadavg is not None else ""
    )
    return (
        f"{w['name']} ({w.get('host')}, pid {w.get('pid')}): load {load:.2f} of capacity "
        f"{capacity:.2f} cores, {capacity - load:.2f} free, {len(w.get('jobs') or ())} job(s)"
        f"{machine}"
    )


async def _read(url: str) -> tuple[list[dict[str, Any]], dict[str, int], str]:
    from ..queue.redisq import JobQueue

    queue = JobQueue(url)
    try:
        try:
            return await queue.workers(), await queue.backlog(), queue.shown_url
        except RecfwError:
            raise
        except Exception as exc:
            raise queue.error(exc) from None
    finally:
        await queue.close()
