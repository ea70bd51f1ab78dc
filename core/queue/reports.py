"""A worker's reports that Redis did not take: kept on disk, re-sent in order.

A queue worker reports a job's last states (``stopped``, then ``stored`` or
``kept``, or ``failed``) on the job's state stream. If Redis is down at that
moment (the file may already be in the customer's bucket), the report must not
be lost: the room server waits for it to mark the recording stored and send
``recording.finished``. :class:`PendingReports` keeps such states in a folder
beside the worker's spool (``<spool>/.reports/<job id>.jsonl``, one JSON line
per state, with the job's stream entry id), so they survive a worker restart
too, and :meth:`PendingReports.flush` re-sends them, oldest first, once Redis
answers again; the job's stream entry is acknowledged after its last state.

Once a job has a state waiting, its later states wait behind it (the room
server must see ``stopped`` before ``stored``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .redisq import JobQueue

log = logging.getLogger(__name__)

#: The folder, inside a worker's spool folder, of its unsent reports.
FOLDER = ".reports"


class PendingReports:
    """States not yet reported, per job, persisted under ``folder`` (see the module docs)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _file(self, job_id: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in job_id)
        return self.folder / f"{safe}.jsonl"

    def has(self, job_id: str) -> bool:
        """Whether ``job_id`` has states waiting (its later states must wait too)."""
        return self._file(job_id).exists()

    def add(self, job_id: str, state: dict[str, Any], entry_id: str | None = None) -> None:
        """Keep ``state`` (with ``"state"``) of ``job_id`` until :meth:`flush` sends it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"jobId": job_id, "entryId": entry_id, "state": state}, default=str)
        with self._file(job_id).open("a", encoding="utf-8") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

    def set_entry(self, job_id: str, entry_id: str) -> None:
        """The stream entry to acknowledge once every state of ``job_id`` is sent."""
        if self.has(job_id):
            self.add(job_id, {}, entry_id)

    def jobs(self) -> list[str]:
        """Jobs with states waiting, the oldest first."""
        try:
            files = sorted(self.folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return []
        out = []
        for path in files:
            lines = _read(path)
            if lines:
                out.append(str(lines[0].get("jobId") or path.stem))
        return out

    async def flush(
        self, queue: JobQueue, sent: list[tuple[str, dict[str, Any]]] | None = None
    ) -> int:
        """Send every waiting state, oldest first; returns how many were sent (each is
        appended to ``sent`` as ``(job id, state)``).

        Stops at the first failure (the rest stay on disk, in order) and raises it.
        """
        count = 0
        for job_id in self.jobs():
            path = self._file(job_id)
            lines = _read(path)
            entry_id = next((ln.get("entryId") for ln in lines if ln.get("entryId")), None)
            while lines:
                state = dict(lines[0].get("state") or {})
                if state.get("state"):
                    await queue.report(job_id, **state)
                    count += 1
                    if sent is not None:
                        sent.append((job_id, state))
                    log.info("job %s: reported %s (it waited for Redis)", job_id, state["state"])
                lines = lines[1:]
                _write(path, lines)
            if entry_id:
                await queue.done(str(entry_id))
            path.unlink(missing_ok=True)
        return count


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash: the states before it still count
        if isinstance(value, dict):
            out.append(value)
    return out


def _write(path: Path, lines: list[dict[str, Any]]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text("".join(json.dumps(ln, default=str) + "\n" for ln in lines))
    os.replace(temporary, path)


__all__ = ["FOLDER", "PendingReports"]
