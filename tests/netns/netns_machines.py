"""A recfw deployment spread over network namespaces ("machines"), for the multi-machine tests.

The *customer* host stands for everything outside the deployment: the
customer's S3 bucket (moto), its webhook receiver, and the people in the
meeting (headless participants). The test's own thread works from there
(:meth:`recfw.testing.netns.Host.entered`), so every socket the test opens is
the customer's. The *control* host runs ``recfw run``; other hosts run what a
test adds (Redis, ``recfw worker`` processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from recfw.config import parse_config
from recfw.control import Database
from recfw.control.crypto import new_key
from recfw.testing.netns import Host, HostProcess, Network
from recfw.testing.processes import RECFW
from recfw.testing.s3server import S3Server
from recfw.testing.webhooks import WebhookReceiver

T = TypeVar("T")

API_KEY = "netns-test-api-key-0123456789"
WEBHOOK_SECRET = "netns-test-webhook-secret"

CONFIG = """
[recording]
type = "cloud"
startTrigger = "automatic"

[recording.destination]
provider = "s3"
bucket = "{bucket}"
accessKeyId = "{key_id}"
accessKeySecret = "{secret}"
endpointUrl = "{endpoint}"
region = "{region}"
fileFormat = "mkv"

[server]
host = "{listen}"
port = 0
dataDir = "{data_dir}"
iceAddresses = ["{host}"]
allowedDestinations = ["{subnet}"]

[[webhooks]]
url = "{webhook_url}"
secret = "{webhook_secret}"
{extra}
"""


async def wait_for(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``predicate`` (in a thread) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.5)


class Deployment:
    """The customer's side (S3, webhooks) and the control plane's config, on ``network``."""

    def __init__(self, network: Network, folder: Path):
        self.network = network
        self.folder = folder
        self.customer = network.add_host("customer")
        self.control = network.add_host("control")
        self.s3: S3Server | None = None
        self.receiver: WebhookReceiver | None = None
        self.bucket = ""
        self.secret_key = new_key()
        self.data_dir = folder / "control" / "data"
        self.config_path = folder / "control" / "recfw.toml"
        self.run: HostProcess | None = None
        self.base = ""
        self.db: Database | None = None
        #: Environment every recfw process gets (e.g. ``RECFW_DATABASE_URL``).
        self.shared_env: dict[str, str] = {}

    # --- the customer's side -------------------------------------------------------

    async def start_customer(self) -> None:
        """moto S3 and the webhook receiver, both listening on the customer's address."""
        with self.customer.entered():  # moto's server thread starts (and stays) there
            self.s3 = S3Server(host=self.customer.address).start()
            self.bucket = self.s3.create_bucket()
            self.receiver = WebhookReceiver(host=self.customer.address)
            await self.receiver.start()

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
        env.update(
            RECFW_API_KEY=API_KEY,
            RECFW_SECRET_KEY=self.secret_key,
            RECFW_HOST_SECRET="netns-test-host-secret",
            RECFW_WEBHOOK_EXIT_WAIT="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.shared_env)
        env.update(extra)
        return env

    # --- the control plane -------------------------------------------------------

    def write_config(
        self,
        extra: str = "",
        path: Path | None = None,
        data_dir: Path | None = None,
        host: Host | None = None,
        listen: str | None = None,
    ) -> Path:
        """A machine's config file (the control plane's by default); the server listens
        on ``listen`` (default: the host's address) and offers the host's address to ICE."""
        assert self.s3 is not None and self.receiver is not None
        path = path or self.config_path
        host = host or self.control
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            CONFIG.format(
                bucket=self.bucket,
                key_id=self.s3.access_key_id,
                secret=self.s3.secret_access_key,
                endpoint=self.s3.endpoint_url,
                region=self.s3.region,
                host=host.address,
                listen=listen or host.address,
                data_dir=data_dir or self.data_dir,
                subnet=self.network.subnet,
                webhook_url=self.receiver.url,
                webhook_secret=WEBHOOK_SECRET,
                extra=extra,
            )
        )
        return path

    async def start_control(self, env: dict[str, str] | None = None) -> str:
        """``recfw run`` on the control host; returns its base URL."""
        self.run = self.control.popen(
            [RECFW, "run", "--config", str(self.config_path), "--log-level", "info"],
            env=env or self.env(),
            cwd=self.config_path.parent,
        )
        match = await self.run.await_for(r"recfw room server on (\S+)", 90)
        # Listening on every address, it prints 0.0.0.0: others reach it at its address.
        self.base = match.group(1).replace("://0.0.0.0:", f"://{self.control.address}:")
        return self.base

    def database(self) -> Database:
        """The control plane's database (its SQLite file, or ``RECFW_DATABASE_URL``
        of :meth:`env`), read directly by the test."""
        if self.db is None:
            config = parse_config({"server": {"dataDir": str(self.data_dir)}}, environ={})
            self.db = Database.open(config, self.env(), upgrade=False)
        return self.db

    async def create_meeting(self) -> dict[str, Any]:
        """``POST /v1/meetings`` from the customer's side."""
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                f"{self.base}/v1/meetings",
                headers={"Authorization": f"Bearer {API_KEY}"},
                json={"endDate": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
            )
            assert answer.status == 201, await answer.text()
            return await answer.json()

    def print_outputs(self, lines: int = 80) -> None:
        """Each process's last lines (pytest shows them when the test failed)."""
        for host in self.network.hosts.values():
            for process in host.processes:
                command = " ".join(Path(a).name for a in process.argv[:3])
                print(f"--- {host.name} {host.address}: {command} (status {process.returncode})")
                print("\n".join(process.lines[-lines:]))

    async def close(self) -> None:
        self.print_outputs()
        if self.db is not None:
            self.db.dispose()
        with self.customer.entered():
            if self.receiver is not None:
                await self.receiver.stop()
            if self.s3 is not None:
                with contextlib.suppress(Exception):
                    self.s3.stop()
