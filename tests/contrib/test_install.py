"""The contrib plugins install the third-party way: ``pip install`` into a fresh venv.

One virtualenv (no system site-packages) for the module: recfw from this
checkout (not editable) and ``contrib/recfw-webm`` + ``contrib/recfw-azure``
are installed with pip under ``constraints.txt``. Then, through the installed
``recfw`` command only: the plugins are listed, ``fileFormat = "webm"`` and
``provider = "azure"`` validate, a demo meeting is recorded to a ``.webm`` file
that PyAV decodes, and after ``pip uninstall`` both settings are rejected with
errors naming their fields. Takes about a minute (pip works from its cache).
pip builds from a copy of the checkout, so the checkout is left as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEBM_CONFIG = """
[recording]
type = "local"
startTrigger = "automatic"

[recording.destination]
provider = "local"
bucket = "{folder}"
fileFormat = "webm"
"""
AZURE_CONFIG = """
[recording]
type = "cloud"
startTrigger = "automatic"

[recording.destination]
provider = "azure"
bucket = "recordings/meetings"
accessKeyId = "myaccount"
accessKeySecret = "bXlrZXk="
fileFormat = "mkv"
"""


def _run(venv: Path, *args: str, cwd: Path | None = None, check: bool = True, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}"
        )
    return result


#: Left out of the copy pip builds from (setuptools builds in the source tree:
#: building in place would leave build/ and *.egg-info in the checkout, and an
#: egg-info on sys.path is an installed distribution to importlib.metadata).
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
    ".pytest_cache", ".ruff_cache", "node_modules", "recordings", "artifacts",
)  # fmt: skip


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_COPIED)
    path = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    _run(
        path,
        "pip", "install", "--quiet", "-c", str(src / "constraints.txt"),
        str(src), str(src / "contrib" / "recfw-webm"), str(src / "contrib" / "recfw-azure"),
        timeout=600,
    )  # fmt: skip
    return path


def _plugins(venv: Path) -> dict:
    return json.loads(_run(venv, "recfw", "plugins", "--json").stdout)


def test_the_venv_is_fresh_and_recfw_is_not_editable(venv):
    out = _run(venv, "python", "-c", "import recfw, sys; print(recfw.__file__); print(sys.prefix)")
    module, prefix = out.stdout.split()
    assert module.startswith(str(venv)), "recfw should come from the fresh venv"
    assert Path(prefix) == venv
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg


def test_recfw_plugins_lists_the_contrib_plugins(venv):
    data = _plugins(venv)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["webm"]["distribution"] == "recfw-webm"
    assert by_name["webm"]["provides"] == {"encoders": ["webm"]}
    assert by_name["azure"]["distribution"] == "recfw-azure"
    assert by_name["azure"]["provides"] == {"sinks": ["azure"]}
    assert data["failures"] == []
    table = _run(venv, "recfw", "plugins").stdout
    assert "recfw-webm" in table and "recfw-azure" in table


def test_settings_accept_webm_and_azure(venv, tmp_path):
    webm = tmp_path / "webm.toml"
    webm.write_text(WEBM_CONFIG.format(folder=tmp_path / "rec"))
    out = _run(venv, "recfw", "settings", "check", str(webm))
    assert "valid" in out.stdout and '"fileFormat": "webm"' in out.stdout
    azure = tmp_path / "azure.toml"
    azure.write_text(AZURE_CONFIG)
    out = _run(venv, "recfw", "settings", "check", str(azure))
    assert '"provider": "azure"' in out.stdout
    assert "bXlrZXk=" not in out.stdout  # the account key stays masked


def test_a_demo_meeting_records_to_webm(venv, tmp_path):
    folder = tmp_path / "rec"
    cfg = tmp_path / "webm.toml"
    cfg.write_text(WEBM_CONFIG.format(folder=folder))
    _run(
        venv, "recfw", "demo", "--config", str(cfg), "--room", "install test",
        "--people", "2", "--duration", "2", cwd=tmp_path, timeout=180,
    )  # fmt: skip
    files = sorted(folder.glob("*.webm"))
    assert len(files) == 1, sorted(folder.iterdir()) if folder.exists() else "no folder"
    assert files[0].name.startswith("install-test-")
    import av

    with av.open(str(files[0])) as container:
        assert container.format.name.startswith("matroska")
        assert container.streams.video[0].codec_context.name in ("vp8", "libvpx")
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 10


def test_after_uninstall_the_settings_are_rejected_by_field(venv, tmp_path):
    _run(venv, "pip", "uninstall", "--yes", "--quiet", "recfw-webm", "recfw-azure")
    names = {p["name"] for p in _plugins(venv)["plugins"]}
    assert not names & {"webm", "azure"}
    webm = tmp_path / "webm.toml"
    webm.write_text(WEBM_CONFIG.format(folder=tmp_path / "rec"))
    out = _run(venv, "recfw", "settings", "check", str(webm), check=False)
    assert out.returncode != 0
    assert "recording.destination.fileFormat" in out.stdout + out.stderr
    assert "webm" in out.stdout + out.stderr
    azure = tmp_path / "azure.toml"
    azure.write_text(AZURE_CONFIG)
    out = _run(venv, "recfw", "settings", "check", str(azure), check=False)
    assert out.returncode != 0
    assert "recording.destination.provider" in out.stdout + out.stderr
    assert "bXlrZXk=" not in out.stdout + out.stderr
