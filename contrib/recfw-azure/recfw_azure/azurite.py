"""The Azurite emulator (Azure's own, from the npm registry) on loopback, for tests.

::

    with Azurite() as azurite:
        azurite.create_container("recordings")
        destination = azurite.destination("recordings/meetings")

Azurite is found as ``azurite-blob`` under ``$RECFW_AZURITE_DIR`` (default
``~/.cache/recfw/azurite``, filled by ``npm install --prefix DIR azurite``),
or on ``PATH``. :func:`ensure_azurite` installs it there with npm when it is
missing. It runs with telemetry off, in a temporary folder, on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from recfw.recording import Destination
from recfw.secrets import Secret

log = logging.getLogger(__name__)

#: Azurite's well-known development account (public, documented by Microsoft).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_VERSION = "3.35.0"


def azurite_dir() -> Path:
    return Path(os.environ.get("RECFW_AZURITE_DIR", Path.home() / ".cache/recfw/azurite"))


def find_azurite() -> str | None:
    """The ``azurite-blob`` executable, or ``None``."""
    local = azurite_dir() / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    return shutil.which("azurite-blob")


def ensure_azurite() -> str:
    """``azurite-blob``, installed with npm into :func:`azurite_dir` first if missing."""
    found = find_azurite()
    if found:
        return found
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise FileNotFoundError("Node.js (node and npm) is needed to run the Azurite emulator")
    target = azurite_dir()
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(target),
         f"azurite@{AZURITE_VERSION}"],
        check=True,
        timeout=600,
    )  # fmt: skip
    found = find_azurite()
    if not found:
        raise FileNotFoundError(f"npm installed azurite into {target} but azurite-blob is missing")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Azurite:
    """An ``azurite-blob`` process on 127.0.0.1 at a free port, as a context manager."""

    def __init__(self, executable: str | None = None):
        self.executable = executable or ensure_azurite()
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def start(self) -> Azurite:
        import tempfile

        self.port = _free_port()
        self._workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        self._proc = subprocess.Popen(
            [self.executable, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
             "--location", str(self._workdir), "--disableTelemetry",
             "--silent", "--skipApiVersionCheck", "--loose"],
            stdout=subprocess.DEVNULL,
            stderr=open(self._workdir / "stderr.log", "wb"),  # noqa: SIM115 - the child owns it
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = (self._workdir / "stderr.log").read_text(errors="replace")
                raise RuntimeError(f"azurite exited with {self._proc.returncode}: {err[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                log.info("azurite on %s", self.endpoint_url)
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("azurite did not start listening within 60 s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def service(self):
        """An ``azure.storage.blob.BlobServiceClient`` with the emulator's account."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.endpoint_url, credential={
            "account_name": ACCOUNT, "account_key": ACCOUNT_KEY,
        })  # fmt: skip

    def create_container(self, name: str | None = None) -> str:
        name = name or f"rec-{uuid.uuid4().hex[:12]}"
        self.service().create_container(name)
        return name

    def blobs(self, container: str) -> list[str]:
        return sorted(b.name for b in self.service().get_container_client(container).list_blobs())

    def read(self, container: str, blob: str) -> bytes:
        return self.service().get_blob_client(container, blob).download_blob().readall()

    def destination(self, bucket: str, *, key: str | None = None) -> Destination:
        return Destination(
            provider="azure",
            bucket=bucket,
            access_key_id=ACCOUNT,
            access_key_secret=Secret(key or ACCOUNT_KEY),
            file_format="mkv",
            endpoint_url=self.endpoint_url,
        )
