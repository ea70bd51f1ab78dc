"""The installed ``recfw`` follows click's error conventions; ``--json`` prints only JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RECFW = str(Path(sys.executable).with_name("recfw"))

GOOD = """
[recording]
type = "local"
startTrigger = "automatic"

[recording.destination]
provider = "local"
bucket = "{folder}"
fileFormat = "mkv"

[[webhooks]]
url = "https://hooks:hunter2-hook-password@example.com/recfw"
secret = "a-webhook-secret-of-some-length"
"""

BAD = """
[recording]
startTrigger = "sometimes"

[recording.destination]
fileFormat = "avi"

[encoder]
crf = "abc"
"""


def recfw(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    return subprocess.run(
        [RECFW, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_settings_check_json_prints_only_json(tmp_path):
    config = tmp_path / "recfw.toml"
    config.write_text(GOOD.format(folder=tmp_path / "recordings"))
    result = recfw(tmp_path, "settings", "check", "--json", str(config))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)  # all of stdout is one JSON document
    assert shown["recording"]["startTrigger"] == "automatic"
    assert shown["webhooks"][0]["secret"] == "********"
    assert "hunter2" not in result.stdout + result.stderr
    # Without --json the first line says the file is valid (for people).
    plain = recfw(tmp_path, "settings", "check", str(config))
    assert plain.stdout.splitlines()[0] == f"{config}: valid"


def test_invalid_settings_exit_3_with_field_named_lines(tmp_path):
    config = tmp_path / "recfw.toml"
    config.write_text(BAD)
    result = recfw(tmp_path, "settings", "check", "--json", str(config))
    assert result.returncode == 3
    fields = {e["field"] for e in json.loads(result.stdout)["errors"]}
    assert {"recording.startTrigger", "recording.destination.fileFormat"} <= fields
    lines = result.stderr.splitlines()
    assert "Error: invalid settings:" in lines
    assert any(line.startswith("  recording.startTrigger: ") for line in lines)
    assert "Traceback" not in result.stderr
    # The same file given to the commands that record: the same status, nothing recorded.
    for command in (["demo", "--duration", "2"], ["run", "--port", "0"]):
        result = recfw(tmp_path, *command, "--config", str(config))
        assert result.returncode == 3, (command, result.stderr)
        assert "Error: invalid settings:" in result.stderr
    assert not (tmp_path / "recordings").exists()


def test_usage_errors_exit_2_the_click_way(tmp_path):
    for args, words in (
        (["--no-such-option"], "No such option"),
        (["run", "--log-level", "loud"], "'loud' is not one of"),
        (["settings", "check"], "Missing argument"),
        (["demo", "--config", str(tmp_path / "missing.toml")], "does not exist"),
    ):
        result = recfw(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Error: " in result.stderr and words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
