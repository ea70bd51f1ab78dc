"""The recording queue's Redis layout, and the one class that talks to it.

Keys (``recfw:`` prefix)::

    recfw:jobs                   stream of recording jobs; consumer group "recorders"
    recfw:job:<id>:state         stream: the worker's state lines for job <id>
    recfw:job:<id>:control       stream: commands for the job's worker ({"type": "stop"})
    recfw:job:<id>:cancelled     set when the room server gave up on the job
    recfw:worker:<name>          a worker's heartbeat (JSON, expires after deadAfter)
    recfw:workers                set of the names of workers seen

A job entry holds the :class:`~recfw.worker.job.RecordingJob` (with the one-time
recorder token, never storage credentials) plus its cost and the workers that
passed on it. Per-job streams expire a day after their last entry.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from ..errors import RecfwError
from ..secrets import Secret, mask_url_credentials
from ..worker.job import RecordingJob

log = logging.getLogger(__name__)

PREFIX = "recfw"
JOBS = f"{PREFIX}:jobs"
GROUP = "recorders"
WORKERS = f"{PREFIX}:workers"
#: Seconds a job's state and control streams live after their last entry.
STREAM_TTL = 24 * 3600
#: States after which a job's worker has nothing more to say.
FINAL_STATES = frozenset({"stored", "kept", "failed", "lost", "cancelled"})


def state_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:state"


def control_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:control"


def cancelled_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:cancelled"


def worker_key(name: str) -> str:
    return f"{PREFIX}:worker:{name}"


@dataclass(frozen=True)
class QueuedJob:
    """One entry of the job stream: the recording job, its cost, who passed on it.

    ``job.spool_path`` is only the file's *name*: the worker that takes the job
    creates the file in its own spool folder and says where (``taken`` state).
    """

    job_id: str
    job: RecordingJob
    cost: float
    people: int = 0
    passed_by: tuple[str, ...] = field(default=())

    def to_fields(self) -> dict[str, str]:
        data = {
            "jobId": self.job_id,
            "job": asdict(self.job),
            "cost": self.cost,
            "people": self.people,
            "passedBy": list(self.passed_by),
        }
        return {"data": json.dumps(data, default=str)}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> QueuedJob:
        try:
            data = json.loads(fields["data"])
            job = RecordingJob.from_json(json.dumps(data["job"]))
            return cls(
                job_id=str(data["jobId"]),
                job=job,
                cost=float(data["cost"]),
                people=int(data.get("people", 0)),
                passed_by=tuple(data.get("passedBy", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RecfwError(f"recording queue: a malformed job entry ({exc!r})") from None

    def passed(self, worker: str) -> QueuedJob:
        return replace(self, passed_by=(*self.passed_by, worker)[-20:])


def _decode(fields: dict[str, str]) -> dict[str, Any]:
    try:
        value = json.loads(fields.get("data", "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class JobQueue:
    """The recording queue on one Redis (``url`` may hold a password: never shown)."""

    def __init__(self, url: Secret | str):
        self._url = url if isinstance(url, Secret) else Secret(url)
        self.shown_url = mask_url_credentials(self._url.reveal())
        # ``Any``: with decode_responses every reply is ``str``-keyed, which redis-py's
        # own annotations (bytes | str | int unions) cannot express.
        self.redis: Any = aioredis.from_url(
            self._url.reveal(), decode_responses=True, health_check_interval=10
        )

    async def close(self) -> None:
        await self.redis.aclose()

    def error(self, exc: BaseException) -> RecfwError:
        """A Redis failure as a clear error that never holds the password."""
        message = mask_url_credentials(str(exc)).replace(self._url.reveal(), self.shown_url)
        return RecfwError(f"recording queue {self.shown_url}: {message}")

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            raise self.error(exc) from None

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(JOBS, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # --- the room server's side -------------------------------------------------

    async def enqueue(self, entry: QueuedJob) -> str:
        """Put a job on the stream; returns its entry id."""
        await self.ensure_group()
        return await self.redis.xadd(JOBS, entry.to_fields())

    async def cancel(self, job_id: str, entry_id: str | None) -> None:
        """Nobody may start ``job_id`` any more (the server gave up on it)."""
        await self.redis.set(cancelled_key(job_id), "1", ex=STREAM_TTL)
        if entry_id is not None:
            await self.redis.xdel(JOBS, entry_id)

    async def command(self, job_id: str, command: dict[str, Any]) -> None:
        """Send ``command`` to the job's worker (with its stream's expiry: both or neither,
        so an error always means the worker was not told)."""
        key = control_key(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"data": json.dumps(command)})
            pipe.expire(key, STREAM_TTL)
            await pipe.execute()

    async def states(
        self, job_id: str, after: str, block_ms: int
    ) -> list[tuple[str, dict[str, Any]]]:
        """State entries of ``job_id`` after entry id ``after`` (waits up to ``block_ms``)."""
        found = await self.redis.xread({state_key(job_id): after}, block=block_ms, count=100)
        return [(eid, _decode(f)) for _, entries in found for eid, f in entries]

    # --- the worker's side --------------------------------------------------------

    async def report(self, job_id: str, state: str, **fields: Any) -> None:
        """Add a state to the job's state stream (with its expiry: both or neither, so an
        error always means the state was not reported)."""
        key = state_key(job_id)
        data = {"data": json.dumps({"state": state, **fields}, default=str)}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, data, maxlen=2000)
            pipe.expire(key, STREAM_TTL)
            await pipe.execute()

    async def last_states(self, job_id: str, count: int = 50) -> list[dict[str, Any]]:
        """The newest states of ``job_id`` (oldest first)."""
        found = await self.redis.xrevrange(state_key(job_id), count=count)
        return [_decode(f) for _, f in reversed(found)]

    async def commands(
        self, job_id: str, after: str, block_ms: int
    ) -> list[tuple[str, dict[str, Any]]]:
        found = await self.redis.xread({control_key(job_id): after}, block=block_ms, count=10)
        return [(eid, _decode(f)) for _, entries in found for eid, f in entries]

    async def is_cancelled(self, job_id: str) -> bool:
        return bool(await self.redis.exists(cancelled_key(job_id)))

    async def read_job(self, consumer: str, block_ms: int) -> tuple[str, QueuedJob] | None:
        """One new job for ``consumer`` (it is then pending under that consumer)."""
        try:
            found = await self.redis.xreadgroup(
                GROUP, consumer, {JOBS: ">"}, count=1, block=block_ms
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()  # a Redis restarted empty
            return None
        for _, entries in found or ():
            for entry_id, fields in entries:
                return entry_id, QueuedJob.from_fields(fields)
        return None

    async def own_pending(self, consumer: str) -> list[tuple[str, QueuedJob | None]]:
        """The jobs pending under ``consumer`` (a restarted worker's unfinished ones)."""
        found = await self.redis.xreadgroup(GROUP, consumer, {JOBS: "0"}, count=1000)
        out: list[tuple[str, QueuedJob | None]] = []
        for _, entries in found or ():
            for entry_id, fields in entries:
                out.append((entry_id, _parse_or_none(fields)))
        return out

    async def done(self, entry_id: str) -> None:
        """The job's entry is finished with: acknowledged and removed from the stream."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(JOBS, GROUP, entry_id)
            pipe.xdel(JOBS, entry_id)
            await pipe.execute()

    async def requeue(self, entry_id: str, entry: QueuedJob) -> str:
        """Give a job back (a new entry at the stream's end), atomically with its removal."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(JOBS, entry.to_fields())
            pipe.xack(JOBS, GROUP, entry_id)
            pipe.xdel(JOBS, entry_id)
            result = await pipe.execute()
        return str(result[0])

    async def touch(self, consumer: str, entry_ids: list[str]) -> None:
        """Reset the idle time of ``consumer``'s running jobs (they are alive)."""
        if entry_ids:
            try:
                await self.redis.xclaim(JOBS, GROUP, consumer, 0, entry_ids, justid=True)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self.ensure_group()  # a Redis restarted empty: nothing left to touch

    async def give_back(self, owner: str, entry_id: str) -> None:
        """Hand a claimed entry back to its (alive) owner."""
        await self.redis.xclaim(JOBS, GROUP, owner, 0, [entry_id], justid=True)

    async def autoclaim(
        self, consumer: str, min_idle_ms: int
    ) -> list[tuple[str, QueuedJob | None]]:
        """Jobs pending for longer than ``min_idle_ms`` (their worker stopped touching
        them: it died), now pending under ``consumer`` (XAUTOCLAIM)."""
        out: list[tuple[str, QueuedJob | None]] = []
        start = "0-0"
        for _ in range(100):
            result = await self.redis.xautoclaim(
                JOBS, GROUP, consumer, min_idle_ms, start_id=start, count=50
            )
            start, entries = result[0], result[1]
            for entry_id, fields in entries:
                if fields is None:  # deleted meanwhile
                    continue
                out.append((entry_id, _parse_or_none(fields)))
            if start in ("0-0", b"0-0"):
                break
        return out

    async def heartbeat(self, name: str, info: dict[str, Any], ttl: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(worker_key(name), json.dumps({**info, "at": time.time()}), px=int(ttl * 1000))
            pipe.sadd(WORKERS, name)
            await pipe.execute()

    async def worker_gone(self, name: str) -> None:
        await self.redis.delete(worker_key(name))

    async def alive(self, name: str) -> bool:
        return bool(await self.redis.exists(worker_key(name)))

    async def workers(self) -> list[dict[str, Any]]:
        """Every live worker's last heartbeat (workers whose heartbeat expired are dropped)."""
        names = sorted(await self.redis.smembers(WORKERS))
        out = []
        for name in names:
            raw = await self.redis.get(worker_key(name))
            if raw is None:
                await self.redis.srem(WORKERS, name)
                continue
            try:
                info = json.loads(raw)
            except ValueError:
                continue
            out.append({"name": name, **info})
        return out

    async def backlog(self) -> dict[str, int]:
        """Jobs waiting (never delivered) and pending (taken, not finished)."""
        await self.ensure_group()
        length = await self.redis.xlen(JOBS)
        pending = await self.redis.xpending(JOBS, GROUP)
        taken = int(pending.get("pending", 0)) if isinstance(pending, dict) else 0
        return {"waiting": max(length - taken, 0), "pending": taken}


def _parse_or_none(fields: dict[str, str] | None) -> QueuedJob | None:
    if not fields:
        return None
    try:
        return QueuedJob.from_fields(fields)
    except RecfwError:
        log.warning("recording queue: a malformed job entry was dropped")
        return None


__all__ = [
    "FINAL_STATES",
    "GROUP",
    "JOBS",
    "JobQueue",
    "QueuedJob",
    "state_key",
]
