"""A full disk while recording: one clear line saying so, never a traceback.

The spool folder (``.recfw/`` in the working directory) is a real 64 KiB tmpfs,
mounted by the test (root only; CI runs as root) and unmounted after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from recfw.encoding import write_error_text

RECFW = str(Path(sys.executable).with_name("recfw"))


@pytest.fixture
def tiny_spool(tmp_path):
    """``tmp_path/.recfw`` on a 64 KiB tmpfs; yields ``tmp_path``."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / ".recfw"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount)], check=True
    )
    try:
        yield tmp_path
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.mark.parametrize("file_format", ["mkv", "mp4"])
def test_demo_on_a_full_disk_says_the_disk_is_full(tiny_spool, file_format):
    config = tiny_spool / "recfw.toml"
    config.write_text(f'[recording.destination]\nfileFormat = "{file_format}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    # Only the spool is on the full disk: the database (recording rows, outbox) is not.
    env["RECFW_DATA_DIR"] = str(tiny_spool.parent / f"{tiny_spool.name}-data")
    result = subprocess.run(
        [RECFW, "demo", "--duration", "4", "--config", str(config)],
        cwd=tiny_spool,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Recording failed: finishing the file failed: the disk is full" in result.stdout
    assert "Traceback" not in output
    assert "never retrieved" not in output
    assert "1447131472" not in output and "PyAV callback" not in output
    kept = list((tiny_spool / ".recfw" / "spool").iterdir())
    assert len(kept) == 1 and kept[0].suffix == f".{file_format}"
    assert f"kept at {kept[0]}" in result.stdout
    assert not (tiny_spool / "recordings").exists()


def test_write_error_text_names_a_full_disk_through_the_chain(tmp_path):
    full = OSError(28, "No space left on device")
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("Error in PyAV callback") from exc
    except RuntimeError as wrapped:
        assert write_error_text(wrapped) == "the disk is full (No space left on device)"
    denied = write_error_text(OSError(13, "Permission denied"))
    assert denied == "PermissionError: Permission denied"
    assert write_error_text(ValueError("bad")) == "ValueError: bad"
