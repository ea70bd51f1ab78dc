"""``recfw demo``: the zero-set-up main job — a synthetic meeting recorded to a file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from ..engine import RoomEngine
from ..rooms import Participant, Role
from ..secrets import strip_url_credentials
from ..session import SessionStatus
from .options import config_option, describe_destination, load_effective
from .spool import warn_about_waiting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoStep:
    """At ``at`` seconds, ``who`` does ``what`` (join / leave)."""

    at: float
    what: str
    who: int


def demo_script(people: int, duration: float) -> list[DemoStep]:
    """Who joins and leaves when: staggered joins, one early leave, all gone at the end."""
    steps = [DemoStep(0.0, "join", 0)]
    for i in range(1, people):
        steps.append(DemoStep(round(duration * 0.15 * i, 2), "join", i))
    if people >= 3:
        steps.append(DemoStep(round(duration * 0.7, 2), "leave", 1))
    for i in range(people):
        if not (people >= 3 and i == 1):
            steps.append(DemoStep(duration, "leave", i))
    return sorted(steps, key=lambda s: s.at)


async def run_demo(
    config_path: Path | None,
    room: str,
    people: int,
    duration: float,
    console: Console,
) -> int:
    config, plugins, settings = load_effective(config_path)
    source = plugins.get("sources", "synthetic")
    participants = [
        Participant(
            id=f"p{i + 1}",
            display_name=("Host" if i == 0 else f"Guest {i}"),
            role=Role.HOST if i == 0 else Role.VISITOR,
        )
        for i in range(people)
    ]

    def media_for(participant: Participant):
        return source.create(participant, {})

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        DownloadColumn(),
        console=console,
        transient=True,
    )

    storing = _StoringWatch(console)

    def on_change(engine: RoomEngine) -> None:
        # Show upload progress for each recording as soon as it stops.
        if engine.status == "stopping" and engine.sessions[-1] is not storing.session:
            session = engine.sessions[-1]
            task = progress.add_task(f"storing {session.file_name}", total=None)
            storing.start(session, settings.destination)

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)
                storing.update(done, total)

            session.progress = report

    engine = RoomEngine(room, settings, config, plugins, media_for=media_for, on_change=on_change)
    host = participants[0]
    trigger = settings.start_trigger
    console.print(
        f"Room [bold]{room}[/bold]: {people} synthetic participants, trigger "
        f"[bold]{trigger}[/bold], {describe_destination(settings)}",
        highlight=False,
    )
    warn_about_waiting(console)
    loop = asyncio.get_running_loop()
    # Ctrl-C (or SIGTERM) ends the meeting early; what was recorded is still stored.
    interrupted = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, interrupted.set)
    t0 = loop.time()
    heartbeat = asyncio.create_task(storing.heartbeat())
    with progress:
        task = progress.add_task("meeting", total=duration)
        for s in demo_script(people, duration):
            delay = t0 + s.at - loop.time()
            while delay > 0 and not interrupted.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(interrupted.wait(), min(delay, 0.25))
                progress.update(task, completed=loop.time() - t0, description=_describe(engine))
                delay = t0 + s.at - loop.time()
            if interrupted.is_set():
                console.print("interrupted: ending the meeting and storing what was recorded")
                break
            who = participants[s.who]
            if s.what == "join":
                await engine.join(who)
                # The host does what the trigger asks of a host.
                if who is host and trigger == "none":
                    await engine.start_command(host.id)
                if engine.state.prompted == host.id:
                    await engine.prompt_answer(host.id, True)
            else:
                if who is host and trigger in ("none", "prompt") and engine.status == "started":
                    await engine.stop_command(host.id)
                await engine.leave(who.id)
            progress.update(task, completed=loop.time() - t0, description=_describe(engine))
        await engine.close()
    heartbeat.cancel()
    return _report(engine, console)


class _StoringWatch:
    """Says what storing is doing while it runs: a line when it starts, then (when the
    output is not a terminal, which shows the progress bar) one every few seconds."""

    EVERY = 5.0

    def __init__(self, console: Console):
        self.console = console
        self.session = None
        self.started = 0.0
        self.done = 0
        self.total = 0

    def start(self, session, destination) -> None:
        from ..storage import transfer_options

        self.session = session
        self.started = time.monotonic()
        self.done = self.total = 0
        where = f"{destination.provider}:{strip_url_credentials(destination.bucket or '')}"
        note = ""
        if destination.provider not in (None, "local"):
            opts = transfer_options()
            note = (
                f" (timeouts: connect {opts.connect_timeout:g} s, read {opts.read_timeout:g} s;"
                f" {opts.attempts} attempt(s) per request)"
            )
        self.console.print(escape(f"storing {session.file_name} in {where}{note}"), highlight=False)

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.EVERY)
            session = self.session
            if self.console.is_terminal or session is None or session.status != "stopping":
                continue
            elapsed = time.monotonic() - self.started
            if self.total:
                sent = f"{self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB sent"
            else:
                sent = "waiting for storage to answer"
            self.console.print(
                f"still storing {session.file_name}: {sent} after {elapsed:.0f} s",
                highlight=False,
            )


def _describe(engine: RoomEngine) -> str:
    people = len(engine.state.people)
    return f"meeting: {people} in the room, recording {engine.status}"


def _report(engine: RoomEngine, console: Console) -> int:
    if not engine.sessions:
        console.print("[red]No recording was made[/red] (the trigger never started one).")
        return 1
    status = 0
    for session in engine.sessions:
        stored = session.stored
        if session.status == SessionStatus.STORED and stored is not None:
            stats = session.stats
            console.print(
                f"[green]Stored[/green] {escape(stored.location)}\n"
                f"  duration {session.duration_s or 0:.1f} s, {stats.width}x{stats.height}, "
                f"{stored.size / 1e6:.2f} MB",
                highlight=False,
            )
        else:
            status = 1
            # Errors may quote "[storage]" or a path with brackets: not rich markup.
            error = escape(str(session.error))
            console.print(f"[red]Recording failed:[/red] {error}", highlight=False)
            if session.kept_at:
                kept = escape(str(session.kept_at))
                console.print(f"  the recording was kept at {kept}", highlight=False)
    return status


@click.command("demo")
@config_option("record to ./recordings as mkv.")
@click.option(
    "--room", default="demo", show_default=True, help="Room name (goes into the file name)."
)
@click.option(
    "--people",
    default=3,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Synthetic participants.",
)
@click.option(
    "--duration",
    default=8.0,
    show_default=True,
    type=click.FloatRange(1.0, 3600.0),
    help="Seconds the meeting lasts.",
)
def demo_command(config_path: Path | None, room: str, people: int, duration: float) -> None:
    """Record a meeting of synthetic participants and store the file.

    Participants join at different times and one leaves early; the configured
    trigger starts and stops the recording (the synthetic host presses Record
    or accepts the prompt when the trigger asks a host). Prints where the file
    went, its duration, resolution and size.
    """
    console = Console(soft_wrap=True)  # paths stay whole, whatever the width
    raise SystemExit(asyncio.run(run_demo(config_path, room, people, duration, console)))
