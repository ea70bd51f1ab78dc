"""The built-in plugins pass the same contract suites that plugin authors use.

Each class points a :mod:`recfw.testing.contracts` suite at one built-in plugin,
looked up by name through the entry points (as a user's settings would); a
built-in missing from the entry points is a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from recfw.manager import Plugins
from recfw.settings import Destination
from recfw.storage import StoredObject
from recfw.testing.contracts import (
    EncoderContract,
    SinkContract,
    SourceContract,
    TriggerContract,
)

_PLUGINS = Plugins(environ={})
_PLUGINS.load_entry_points()


def builtin(kind: str, name: str):
    """The installed built-in ``kind`` called ``name``; fails naming what is missing."""
    registry = getattr(_PLUGINS, kind)
    if name not in registry:
        pytest.fail(f"the built-in {kind[:-1]} {name!r} is not registered: {_PLUGINS.failures}")
    return registry[name]


# --- triggers ------------------------------------------------------------------------


class TestAutomaticTrigger(TriggerContract):
    @pytest.fixture
    def trigger(self):
        return builtin("triggers", "automatic")


class TestAutomaticSecondParticipantTrigger(TriggerContract):
    @pytest.fixture
    def trigger(self):
        return builtin("triggers", "automatic-2nd-participant")


class TestPromptTrigger(TriggerContract):
    @pytest.fixture
    def trigger(self):
        return builtin("triggers", "prompt")


class TestManualTrigger(TriggerContract):
    @pytest.fixture
    def trigger(self):
        return builtin("triggers", "none")


# --- encoders ------------------------------------------------------------------------


class TestMkvEncoder(EncoderContract):
    @pytest.fixture
    def encoder(self):
        return builtin("encoders", "mkv")


class TestMp4Encoder(EncoderContract):
    @pytest.fixture
    def encoder(self):
        return builtin("encoders", "mp4")


# --- sinks ---------------------------------------------------------------------------


class TestLocalSink(SinkContract):
    """The folder is ``<tmp>/root/inner``; nothing may appear in ``root`` outside ``inner``."""

    @pytest.fixture
    def sink(self):
        return builtin("sinks", "local")

    @pytest.fixture
    def destination(self, tmp_path: Path) -> Destination:
        return Destination(provider="local", bucket=str(tmp_path / "root" / "inner"))

    @pytest.fixture
    def broken_destination(self, tmp_path: Path) -> Destination:
        blocker = tmp_path / "a-file"
        blocker.write_text("a file where the folder should be")
        return Destination(provider="local", bucket=str(blocker / "sub"))

    def listing(self, destination: Destination) -> list[str]:
        root = Path(destination.bucket).parent
        return (
            sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
            if root.exists()
            else []
        )

    def expected_prefix(self, destination: Destination) -> str:
        return "inner/"


class TestS3Sink(SinkContract):
    @pytest.fixture
    def sink(self):
        return builtin("sinks", "s3")

    @pytest.fixture
    def destination(self, s3_endpoint, s3_contract_bucket) -> Destination:
        return s3_endpoint.destination(s3_contract_bucket, "meetings/2026")

    @pytest.fixture
    def broken_destination(self, s3_endpoint, s3_contract_bucket) -> Destination:
        return s3_endpoint.destination(
            s3_contract_bucket, "meetings", secret="wrong-secret-" + "x" * 20
        )

    @pytest.fixture(autouse=True)
    def _s3(self, s3_endpoint) -> None:
        self.s3 = s3_endpoint

    def fetch(self, stored: StoredObject, destination: Destination) -> bytes:
        bucket, key = stored.location.removeprefix("s3://").split("/", 1)
        return self.s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def listing(self, destination: Destination) -> list[str]:
        return self.s3.keys(destination.bucket_name)

    def fetch_link(self, url: str) -> bytes:
        # moto's enforced authentication cannot check presigned (query-string) signatures:
        # it looks for an Authorization header. Fetch with the check off.
        previous = self.s3._set_auth("inf")
        try:
            return super().fetch_link(url)
        finally:
            self.s3._set_auth(str(previous))


@pytest.fixture
def s3_contract_bucket(s3_endpoint):
    name = s3_endpoint.create_bucket()
    yield name
    s3_endpoint.delete_bucket(name)


class TestFsspecSink(SinkContract):
    """``file://`` URLs: a real filesystem through fsspec."""

    @pytest.fixture
    def sink(self):
        return builtin("sinks", "fsspec")

    @pytest.fixture
    def destination(self, tmp_path: Path) -> Destination:
        return Destination(provider="fsspec", bucket=f"file://{tmp_path}/root/inner")

    @pytest.fixture
    def broken_destination(self, tmp_path: Path) -> Destination:
        blocker = tmp_path / "a-file"
        blocker.write_text("a file where the folder should be")
        return Destination(provider="fsspec", bucket=f"file://{blocker}/sub")

    def fetch(self, stored: StoredObject, destination: Destination) -> bytes:
        return Path(stored.location.removeprefix("file://")).read_bytes()

    def listing(self, destination: Destination) -> list[str]:
        root = Path(destination.bucket.removeprefix("file://")).parent
        return (
            sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
            if root.exists()
            else []
        )

    def expected_prefix(self, destination: Destination) -> str:
        return "inner/"


# --- sources -------------------------------------------------------------------------


class TestSyntheticSource(SourceContract):
    @pytest.fixture
    def source(self):
        return builtin("sources", "synthetic")


class TestFileSource(SourceContract):
    """A 2 s clip made with the built-in mkv encoder, played as a participant."""

    @pytest.fixture
    def source(self):
        return builtin("sources", "file")

    @pytest.fixture
    def source_options(self, tmp_path: Path) -> dict:
        from recfw.encoding import OutputFormat
        from recfw.testing import media

        encoder = builtin("encoders", "mkv")
        inp = media.steady_input(OutputFormat(160, 120, 15, 48000, "stereo"), seconds=2.0)
        path = media.encode_to_file(encoder, inp, tmp_path / "clip.mkv")
        return {"path": str(path)}


def test_every_builtin_is_covered():
    """A new built-in gets a contract class here (or this list says why not)."""
    covered = {
        "triggers": {"automatic", "automatic-2nd-participant", "prompt", "none"},
        "encoders": {"mkv", "mp4"},
        "sinks": {"local", "s3", "fsspec"},
        "sources": {"synthetic", "file"},
    }
    for kind, names in covered.items():
        builtins = {
            name
            for name, obj in getattr(_PLUGINS, kind).items()
            if type(obj).__module__.startswith("recfw.")
        }
        assert builtins <= names, f"built-in {kind} without a contract test: {builtins - names}"
