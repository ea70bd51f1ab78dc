"""A queued deployment on one box: ``recfw run`` + ``recfw worker --queue`` processes + Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from recfw.control.crypto import new_key
from recfw.queue.redisq import JobQueue
from recfw.server.client import HeadlessParticipant
from recfw.server.ice import unrestrict_host_addresses
from recfw.testing.processes import RECFW, drain, local_run_config, start_run
from recfw.testing.webhooks import WebhookReceiver

WEBHOOK_SECRET = "queue-test-webhook-secret"

CONFIG = local_run_config(
    "automatic",
    'allowedDestinations = ["127.0.0.1:{receiver_port}"]',
    more="""
[workers]
queue = "{queue}"
admissionTimeout = {admission}
heartbeat = 0.5
deadAfter = 4

[[webhooks]]
url = "http://127.0.0.1:{receiver_port}/hooks"
secret = "{secret}"
""",
)


async def until(predicate, timeout: float, what: str, step: float = 0.2):
    """Wait (bounded, never a speed assertion) until ``predicate()`` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(step)


@dataclass
class Deployment:
    """The control plane (``recfw run``), its Redis, its webhook receiver, and workers."""

    folder: Path
    env: dict[str, str]
    queue: JobQueue
    receiver: WebhookReceiver
    base: str = ""
    run: asyncio.subprocess.Process | None = None
    output: list[str] = field(default_factory=list)
    workers: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    worker_output: dict[str, list[str]] = field(default_factory=dict)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    async def start(self) -> None:
        self.run, self.base = await start_run(self.folder, self.env)
        self._tasks.append(asyncio.ensure_future(drain(self.run, self.output)))

    async def worker(self, name: str, capacity: float) -> asyncio.subprocess.Process:
        """Start ``recfw worker --queue`` (config from the file) and wait for its heartbeat."""
        proc = await asyncio.create_subprocess_exec(
            RECFW,
            "worker",
            "--config",
            "recfw.toml",
            "--name",
            name,
            "--capacity",
            str(capacity),
            "--spool-dir",
            f"spool-{name}",
            "--log-level",
            "info",
            cwd=self.folder,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL takes its recorders too
        )
        self.workers[name] = proc
        sink = self.worker_output.setdefault(name, [])
        self._tasks.append(asyncio.ensure_future(drain(proc, sink)))

        async def up() -> bool:
            if proc.returncode is not None:
                raise AssertionError(f"worker {name} exited: {''.join(sink)[-3000:]}")
            return name in {w["name"] for w in await self.queue.workers()}

        await until(up, 120, f"worker {name}'s heartbeat")
        return proc

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and its recorder processes (its machine dies)."""
        proc = self.workers[name]
        os.killpg(proc.pid, signal.SIGKILL)

    async def recfw(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            RECFW,
            *args,
            cwd=self.folder,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, out.decode()
        return out.decode()

    def lines(self, prefix: str) -> list[str]:
        return [line.strip() for line in self.output if line.startswith(prefix)]

    def events(self, kind: str) -> list[dict]:
        return [e for e in self.receiver.events if e["type"] == kind]

    def logs(self) -> str:
        parts = ["".join(self.output)[-6000:]]
        for name, sink in self.worker_output.items():
            parts.append(f"--- worker {name}\n" + "".join(sink)[-4000:])
        return "\n".join(parts)

    async def stop(self) -> None:
        for proc in self.workers.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        if self.run is not None and self.run.returncode is None:
            self.run.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.run.wait(), 90)
            except TimeoutError:
                self.run.kill()
        for proc in self.workers.values():
            try:
                await asyncio.wait_for(proc.wait(), 90)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        for task in self._tasks:
            task.cancel()


@pytest.fixture
async def deployment(redis_server, tmp_path):
    """``await deployment(admission=8)`` -> a started :class:`Deployment` (no workers yet)."""
    receiver = WebhookReceiver()
    await receiver.start()
    made: list[Deployment] = []
    queue = JobQueue(redis_server.url)

    async def make(admission: float = 30) -> Deployment:
        (tmp_path / "recfw.toml").write_text(
            CONFIG.format(
                queue=redis_server.url,
                admission=admission,
                receiver_port=receiver.port,
                secret=WEBHOOK_SECRET,
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
        env.update(
            RECFW_SECRET_KEY=new_key(),
            RECFW_HOST_SECRET="queue-test-host-secret",
            RECFW_WEBHOOK_EXIT_WAIT="1",
            PYTHONUNBUFFERED="1",
        )
        d = Deployment(tmp_path, env, queue, receiver)
        made.append(d)
        await d.start()
        return d

    yield make
    for d in made:
        await d.stop()
        print(d.logs())  # shown by pytest when the test failed
    await queue.close()
    await receiver.stop()
    unrestrict_host_addresses()


@contextlib.asynccontextmanager
async def joined(url: str, media, name: str):
    """A headless participant in the room at ``url``, with a join timeout that holds on a
    loaded machine (the room server may take long to answer its first join)."""
    participant = HeadlessParticipant(url, media, name=name)
    try:
        await participant.connect(timeout=120)
        yield participant
    finally:
        await participant.__aexit__(None, None, None)


def stored_path(line: str) -> Path:
    """The file of a ``stored file:///... (room x)`` line of ``recfw run``."""
    location = line.removeprefix("stored ").rsplit(" (room ", 1)[0]
    return Path(location.removeprefix("file://"))


__all__ = ["Deployment", "joined", "json", "stored_path", "until"]
