"""`recfw settings check` names an internal endpoint as a field error (exit 3) unless the
config file's ``[server] allowedDestinations`` lists it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RECFW = str(Path(sys.executable).with_name("recfw"))

CONFIG = """
[recording]
type = "cloud"

[recording.destination]
provider = "s3"
bucket = "acme-recordings"
accessKeyId = "AKIAEXAMPLE000000000"
accessKeySecret = "example-secret-value-77"
fileFormat = "mkv"
endpointUrl = "{endpoint}"
{server}
"""


def check(tmp_path: Path, endpoint: str, allowed: list[str] | None = None):
    server = ""
    if allowed is not None:
        server = "[server]\nallowedDestinations = [" + ", ".join(f'"{a}"' for a in allowed) + "]"
    path = tmp_path / "recfw.toml"
    path.write_text(CONFIG.format(endpoint=endpoint, server=server))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    return subprocess.run(
        [RECFW, "settings", "check", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254",
        "http://127.0.0.1:9000",
        "http://[::1]:9000",
        "http://0.0.0.0:9000",
        "http://metadata.google.internal",
        "http://localhost:9000",
    ],
)
def test_internal_endpoints_are_field_errors(tmp_path, endpoint):
    result = check(tmp_path, endpoint)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "recording.destination.endpointUrl:" in result.stderr
    assert "allowedDestinations" in result.stderr
    assert "example-secret-value-77" not in result.stdout + result.stderr


def test_an_allow_listed_endpoint_is_valid(tmp_path):
    result = check(tmp_path, "http://127.0.0.1:9000", allowed=["127.0.0.1:9000"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"allowedDestinations": [\n      "127.0.0.1:9000"' in result.stdout
    other_port = check(tmp_path, "http://127.0.0.1:9001", allowed=["127.0.0.1:9000"])
    assert other_port.returncode == 3


def test_a_bad_allow_list_entry_names_its_index(tmp_path):
    result = check(tmp_path, "http://127.0.0.1:9000", allowed=["127.0.0.1:9000", "http://x"])
    assert result.returncode == 3
    assert "server.allowedDestinations[1]:" in result.stderr
