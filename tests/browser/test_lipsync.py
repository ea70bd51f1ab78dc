"""Lip sync of a real Chromium participant, recorded by a recorder process, under a CPU hog.

Chromium's fake camera and microphone play files with a flash and a beep at the
same instants (recfw.testing.syncmarks), each beep with its own pitch. What "in
sync" means is what the browser itself captured: the page records its own
camera and microphone with ``MediaRecorder`` meanwhile (the browser muxes by its
capture clock, the one its RTCP sender reports carry). That is not zero: the
fake devices start apart, and under load the fake camera delivers its file's
frames late, so the picture drifts from the sound at the source. Beep by beep
(told apart by pitch), the recording's offset must be within 33 ms of the
browser's own at the 95th percentile, with both cores busy with other work.
The 10-minute measurement is benchmarks/sync_bench.py.

On the shared 2-core box (2026-11-30) with the hog running: p95 11.2 ms with
nothing else running, 32.1 ms with other jobs too (load average 10).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS
from recfw.testing.syncmarks import compare, measure, record_marker_meeting, summary

pytestmark = pytest.mark.browser

RECORD_SECONDS = 24.0
#: The brief's target: audio - video within an output frame's worth at the 95th percentile.
P95_MS = 33.0


@pytest.fixture
def cpu_hog():
    """A busy loop on each core for the test's length (other work on the machine)."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    yield
    for hog in hogs:
        hog.kill()
        hog.wait()


async def test_chromium_participant_recorded_in_sync_under_a_cpu_hog(
    builtin_plugins, tmp_path, monkeypatch, cpu_hog
):
    monkeypatch.chdir(tmp_path)
    recordings, own = await record_marker_meeting(
        tmp_path,
        builtin_plugins,
        seconds=RECORD_SECONDS,
        chromium=CHROMIUM,
        chromium_args=CHROMIUM_ARGS,
    )
    source = measure(own)
    assert len(source.pairs) >= RECORD_SECONDS / 2, source
    assert len(recordings) == 1, recordings  # the recorder never died
    recorded = measure(recordings[0], white_share=0.15)  # one of two tiles flashes
    # Sender reports come about a second in; the first seconds are the arrival timing.
    errors = compare([p for p in recorded.pairs if p[0] >= 3.0], source.pairs)
    print(f"\nthe browser's own recording: {summary(source.pairs)}")
    print(f"recfw's recording: {summary(recorded.pairs)}")
    assert len(errors) >= RECORD_SECONDS / 2, (recorded, source)
    result = summary(errors)
    print(f"recfw against the browser, beep by beep: {result}")
    assert result.p95_abs_ms <= P95_MS, (result, errors)
