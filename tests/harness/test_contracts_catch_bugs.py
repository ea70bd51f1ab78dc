"""The contract suites fail for plugins that break the rules (each bug, its failing test).

Deliberately broken plugins are pointed at the suites in a separate pytest run
(a subprocess, so their failures are data here); the JUnit report says which
contract tests failed. A suite that let one of these bugs through would be a
test that cannot fail.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

BROKEN = textwrap.dedent(
    """
    import os
    import shutil
    from itertools import count
    from pathlib import Path

    import av
    import pytest

    from recfw.errors import StorageError
    from recfw.rooms import StartCommand, Tick
    from recfw.settings import Destination
    from recfw.storage import StoredObject
    from recfw.testing.contracts import EncoderContract, SinkContract, TriggerContract
    from recfw.triggers import NOTHING, Action, Decision


    class Base:
        name = "broken"
        label = "Broken"


    class AnyoneMayStart(Base):
        def decide(self, state, event):
            if isinstance(event, StartCommand) and not state.recording:
                return Decision(Action.START, "pressed")
            if state.recording and not state.people:
                return Decision(Action.STOP, "empty")
            return NOTHING


    class Impure(Base):
        def __init__(self):
            self.calls = count()

        def decide(self, state, event):
            if next(self.calls) % 2 and state.people and not state.recording:
                return Decision(Action.START, "every other call")
            return NOTHING


    class CountsRecorders(Base):
        def decide(self, state, event):
            if not state.recording and len(state.participants) >= 2:
                return Decision(Action.START, "two participants")
            return NOTHING


    class StopsOnTicks(Base):
        def decide(self, state, event):
            return Decision(Action.STOP, "tick") if isinstance(event, Tick) else NOTHING


    class TestAnyoneMayStart(TriggerContract):
        plugin = AnyoneMayStart()


    class TestImpure(TriggerContract):
        plugin = Impure()


    class TestCountsRecorders(TriggerContract):
        plugin = CountsRecorders()


    class TestStopsOnTicks(TriggerContract):
        plugin = StopsOnTicks()


    class _Stream:
        def __init__(self, output, fmt, container_format, renumber):
            self.container = av.open(output, mode="w", format=container_format)
            self.video = self.container.add_stream("mpeg4", rate=fmt.fps)
            self.video.width, self.video.height = fmt.width, fmt.height
            self.video.pix_fmt = "yuv420p"
            self.video.codec_context.time_base = fmt.video_time_base
            self.renumber = count() if renumber else None

        def write_video(self, frame):
            if self.renumber is not None:
                frame.pts = next(self.renumber)  # forgets gaps: durations come out wrong
            for packet in self.video.encode(frame):
                self.container.mux(packet)

        def write_audio(self, frame):
            pass  # drops audio

        def close(self):
            for packet in self.video.encode(None):
                self.container.mux(packet)
            self.container.close()


    class IgnoresTimestamps:
        name, extension, content_type = "ignores-pts", "mkv", "video/x-matroska"

        def open(self, output, fmt, options):
            return _Stream(output, fmt, "matroska", renumber=True)


    class MoovAtTheEnd:
        name, extension, content_type = "plain-mp4", "mp4", "video/mp4"

        def open(self, output, fmt, options):
            return _Stream(output, fmt, "mp4", renumber=False)


    class TestIgnoresTimestamps(EncoderContract):
        plugin = IgnoresTimestamps()


    class TestMoovAtTheEnd(EncoderContract):
        plugin = MoovAtTheEnd()


    class NoOptionCheck:
        # Fine files, but bad [encoder] options only show when a recording starts.
        name, extension, content_type = "no-check", "mkv", "video/x-matroska"

        def open(self, output, fmt, options):
            return _Stream(output, fmt, "matroska", renumber=False)


    class TestNoOptionCheck(EncoderContract):
        plugin = NoOptionCheck()


    class FolderSink:
        name = "folder"
        needs_credentials = False
        writes_locally = True
        def validate(self, destination):
            return []


    class NaiveJoin(FolderSink):
        def store(self, path, key, destination, progress):
            target = Path(os.path.normpath(os.path.join(destination.bucket, key)))
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            except OSError as exc:
                raise StorageError(str(exc)) from None
            return StoredObject(str(target), target.stat().st_size)


    class SwallowsErrors(FolderSink):
        def store(self, path, key, destination, progress):
            target = Path(destination.bucket) / key
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            except OSError:
                pass  # "it probably worked"
            return StoredObject(str(target), Path(path).stat().st_size)


    class MovesTheFile(FolderSink):
        def store(self, path, key, destination, progress):
            target = Path(destination.bucket) / key.replace("/", "_")
            target.parent.mkdir(parents=True, exist_ok=True)
            size = Path(path).stat().st_size
            shutil.move(path, target)
            return StoredObject(str(target), size)


    class _FolderContract(SinkContract):
        @pytest.fixture
        def destination(self, tmp_path):
            return Destination(provider="folder", bucket=str(tmp_path / "root" / "inner"))

        @pytest.fixture
        def broken_destination(self, tmp_path):
            (tmp_path / "f").write_text("x")
            return Destination(provider="folder", bucket=str(tmp_path / "f" / "sub"))

        def listing(self, destination):
            root = Path(destination.bucket).parent
            return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]

        def expected_prefix(self, destination):
            return "inner/"


    class TestNaiveJoin(_FolderContract):
        plugin = NaiveJoin()


    class TestSwallowsErrors(_FolderContract):
        plugin = SwallowsErrors()


    class TestMovesTheFile(_FolderContract):
        plugin = MovesTheFile()


    class NoContentType(FolderSink):
        # Written before store() took the encoder's content type.
        def store(self, path, key, destination, progress):
            target = Path(destination.bucket) / key
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            return StoredObject(str(target), target.stat().st_size)


    class TestNoContentType(_FolderContract):
        plugin = NoContentType()
    """
)

#: class -> contract tests that must fail for it
EXPECTED = {
    "TestAnyoneMayStart": {"test_raw_decisions_respect_the_recording_state"},
    "TestImpure": {"test_decide_is_pure_and_deterministic"},
    "TestCountsRecorders": {"test_recorder_events_never_change_decisions"},
    "TestStopsOnTicks": {"test_raw_decisions_respect_the_recording_state"},
    "TestIgnoresTimestamps": {"test_any_frames_decode_with_the_written_timing"},
    "TestMoovAtTheEnd": {"test_a_truncated_file_still_decodes"},
    "TestNaiveJoin": {"test_raw_unsafe_keys_fail_or_stay_inside"},
    "TestSwallowsErrors": {"test_a_failing_store_raises_storage_error"},
    "TestMovesTheFile": {"test_round_trips_bytes", "test_never_overwrites"},
    "TestNoOptionCheck": {"test_validates_its_options"},
    "TestNoContentType": {"test_accepts_a_content_type"},
}


@pytest.fixture(scope="module")
def failures(tmp_path_factory) -> dict[str, set[str]]:
    tmp = tmp_path_factory.mktemp("broken")
    (tmp / "test_broken_plugins.py").write_text(BROKEN)
    # No shrinking: we only need to know that a failure is found, not the smallest one.
    (tmp / "conftest.py").write_text(
        "from hypothesis import Phase, settings\n"
        "settings.register_profile('find', phases=[Phase.generate])\n"
        "settings.load_profile('find')\n"
    )
    wanted = set().union(*EXPECTED.values()) | {"test_fits_the_protocol"}
    report = tmp / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
         "-k", " or ".join(sorted(wanted)), "test_broken_plugins.py"],
        cwd=tmp,
        capture_output=True,
        timeout=600,
    )  # fmt: skip
    out: dict[str, set[str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            cls = case.get("classname", "").rsplit(".", 1)[-1]
            out.setdefault(cls, set()).add(case.get("name", "").split("[", 1)[0])
    return out


@pytest.mark.parametrize("cls", sorted(EXPECTED))
def test_the_contract_catches_the_bug(failures: dict[str, set[str]], cls: str):
    missing = EXPECTED[cls] - failures.get(cls, set())
    assert not missing, f"{cls}: these contract tests passed a broken plugin: {missing}"


def test_only_the_broken_rules_fail(failures: dict[str, set[str]]):
    """The protocol checks pass for all of them: the suites pinpoint the broken rule."""
    for cls, names in failures.items():
        assert "test_fits_the_protocol" not in names, cls
