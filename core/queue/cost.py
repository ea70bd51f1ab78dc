"""What a recording costs (in cores) and what a host offers: the admission rule's two sides.

A worker takes a job when ``cost(job) <= capacity - load``, where ``load`` is
the sum of the costs of the jobs it runs. Pure functions, no I/O: the numbers
are estimates measured once (see docs/architecture.md, "Admission"), not a
live CPU reading, so two workers never race on a noisy load average.

A recorder decodes every person's video, composites a 1280x720 canvas and
encodes it (x264 + Opus) in real time; mkv and mp4 hold the same streams, so the
format changes nothing measurable. Its cost is

    BASE_CORES + PER_PERSON_CORES * people * (width * height * fps) / (1280 * 720 * 30)

(people's camera resolution and frame rate as the room server asks browsers for
them: ``[server] videoWidth/videoHeight/videoFps``).
"""

from __future__ import annotations

import os

#: Cores of a recorder's fixed part: the 1280x720@30 canvas, x264 veryfast, Opus.
#: Measured flat out on the project's 2-core box (``media_bench.py live``, one
#: person: 0.38 cores; docs/architecture.md).
BASE_CORES = 0.38
#: Cores per person sending 1280x720 at 30 fps: VP8 decode (0.148 cores measured flat
#: out, ``queue_bench.py --decode-only``) + scaling into a tile (0.01: ``media_bench.py
#: live``, 3 people against 1), rounded up to 0.16.
PER_PERSON_CORES = 0.16
#: What hosts offer recorders by default: this share of their cores (as LiveKit Egress).
DEFAULT_SHARE = 0.8
_REFERENCE_PIXEL_RATE = 1280 * 720 * 30
#: Formats whose cost is known (both are x264 + Opus in a different container).
FORMAT_FACTORS = {"mkv": 1.0, "mp4": 1.0}


def cost(
    people: int,
    width: int = 1280,
    height: int = 720,
    fps: int = 30,
    file_format: str = "mkv",
    *,
    base: float = BASE_CORES,
    per_person: float = PER_PERSON_CORES,
) -> float:
    """Estimated cores a recorder of ``people`` people uses (see the module docs)."""
    if people < 0 or width <= 0 or height <= 0 or fps <= 0:
        raise ValueError("people must be >= 0, and width, height, fps > 0")
    scale = (width * height * fps) / _REFERENCE_PIXEL_RATE
    factor = FORMAT_FACTORS.get(file_format, 1.0)
    return round((base + per_person * max(people, 1) * scale) * factor, 3)


def default_capacity(cores: int | None = None) -> float:
    """Cores a host offers recorders by default: 80% of ``cores`` (default: this host's)."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return round(DEFAULT_SHARE * cores, 3)


def admits(job_cost: float, capacity: float, load: float) -> bool:
    """The admission rule: the job fits in what is left of ``capacity``."""
    return job_cost <= capacity - load + 1e-9


RULE = "a worker takes a job when cost <= capacity - load (load: the costs of its running jobs)"

__all__ = [
    "BASE_CORES",
    "DEFAULT_SHARE",
    "PER_PERSON_CORES",
    "RULE",
    "admits",
    "cost",
    "default_capacity",
]
