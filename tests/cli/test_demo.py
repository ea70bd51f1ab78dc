"""``recfw demo``, the main job, as a user runs it: a subprocess in a fresh folder.

The file is checked by decoding it; the S3 case uses a real S3 endpoint (moto
server on 127.0.0.1).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np

RECFW = str(Path(sys.executable).with_name("recfw"))
NAME = re.compile(r"^demo-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.(mkv|mp4)$")


def run_demo(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    full_env.update(env or {})
    return subprocess.run(
        [RECFW, "demo", "--duration", "3", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def probe(path: Path) -> tuple[int, int, float, list[float]]:
    with av.open(str(path)) as container:
        assert container.streams.audio, "an audio stream"
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        means = [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video)]
        duration = float(container.duration) / av.time_base
        return video.codec_context.width, video.codec_context.height, duration, means


def test_demo_records_into_local_recordings_folder(tmp_path):
    result = run_demo(tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    [recording] = list((tmp_path / "recordings").iterdir())
    assert NAME.match(recording.name), recording.name
    assert str(recording) in result.stdout
    assert "1280x720" in result.stdout
    width, height, duration, means = probe(recording)
    assert (width, height) == (1280, 720)
    assert 2.0 <= duration <= 4.0
    # Participants' tiles are drawn: most of the recording is not a black frame.
    assert np.mean(np.array(means) > 10) > 0.8
    assert not any((tmp_path / ".recfw" / "spool").iterdir()), "spool emptied after the store"


def test_demo_with_mp4_and_s3_destination(tmp_path, s3_server, s3_bucket):
    config = tmp_path / "recfw.toml"
    config.write_text(
        f"""
[recording]
type = "cloud"
startTrigger = "none"

[recording.destination]
provider = "s3"
bucket = "{s3_bucket}/meetings/team"
accessKeyId = "{s3_server.access_key_id}"
fileFormat = "mp4"
endpointUrl = "{s3_server.endpoint_url}"
region = "us-east-1"

[server]
allowedDestinations = ["{s3_server.allowed_destination}"]
"""
    )
    secret = s3_server.secret_access_key
    result = run_demo(tmp_path, "--config", str(config), env={"RECFW_ACCESS_KEY_SECRET": secret})
    assert result.returncode == 0, result.stderr + result.stdout
    assert secret not in result.stdout + result.stderr
    [key] = s3_server.keys(s3_bucket)
    assert key.startswith("meetings/team/")
    assert NAME.match(key.rsplit("/", 1)[1]) and key.endswith(".mp4")
    local = tmp_path / "downloaded.mp4"
    s3_server.client().download_file(s3_bucket, key, str(local))
    width, height, duration, _ = probe(local)
    assert (width, height) == (1280, 720)
    assert 1.5 <= duration <= 4.0
    assert not (tmp_path / "recordings").exists()
    assert not any((tmp_path / ".recfw" / "spool").iterdir())


def test_demo_with_wrong_credentials_keeps_the_file(tmp_path, s3_server, s3_bucket):
    config = tmp_path / "recfw.toml"
    config.write_text(
        f"""
[recording]
type = "cloud"

[recording.destination]
provider = "s3"
bucket = "{s3_bucket}"
accessKeyId = "AKIAWRONGWRONGWRONG1"
accessKeySecret = "wrong-secret-value-xyz"
fileFormat = "mkv"
endpointUrl = "{s3_server.endpoint_url}"

[server]
allowedDestinations = ["{s3_server.allowed_destination}"]
"""
    )
    result = run_demo(tmp_path, "--config", str(config))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "wrong-secret-value-xyz" not in output
    assert "kept at" in output
    kept = list((tmp_path / ".recfw" / "spool").iterdir())
    assert len(kept) == 1 and str(kept[0].name) in output
    _, _, duration, _ = probe(kept[0])
    assert duration > 1.5
    assert s3_server.keys(s3_bucket) == []


def test_demo_rejects_bad_settings_with_field_names(tmp_path):
    config = tmp_path / "recfw.toml"
    config.write_text(
        '[recording]\nstartTrigger = "sometimes"\n[recording.destination]\nfileFormat = "avi"\n'
    )
    result = run_demo(tmp_path, "--config", str(config))
    assert result.returncode == 2
    assert "recording.startTrigger" in result.stderr
    assert "recording.destination.fileFormat" in result.stderr


def test_demo_rejects_bad_encoder_options_before_recording(tmp_path):
    config = tmp_path / "recfw.toml"
    config.write_text('[encoder]\ncrf = "abc"\n')
    result = run_demo(tmp_path, "--config", str(config))
    assert result.returncode == 2
    assert "encoder.crf" in result.stderr
    assert not (tmp_path / ".recfw").exists()
