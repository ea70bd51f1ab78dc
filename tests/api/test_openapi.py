"""The OpenAPI 3.1 document: served without a key, valid, and schemathesis finds no 5xx
(nor answers outside the document) against the live server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from api_helpers import API_KEY, add_recording, call, local_file
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from recfw.times import iso_utc
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

#: Examples per operation and mode: enough to reach every branch, bounded in time.
EXAMPLES = 8


async def test_the_document_is_served_without_a_key_and_is_valid(api_server):
    server = await api_server()
    answer = await call("GET", server.base_url + "/v1/openapi.json", key=None)
    assert answer.status == 200
    document = answer.body
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any problem
    paths = set(document["paths"])
    assert paths == {
        "/meetings",
        "/meetings/{meetingId}",
        "/recordings",
        "/recordings/{recordingId}",
        "/recordings/{recordingId}/access-link",
        "/recordings/bulk-delete",
    }
    assert (await call("GET", server.base_url + "/v1/meetings", key=None)).status == 401


def _fuzz(document: dict, base_url: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Run schemathesis over every operation: the problems found (none expected) and
    every ``(operation, status)`` seen."""
    schema = schemathesis.openapi.from_dict(document)
    problems: list[str] = []
    seen: list[tuple[str, int]] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_one(operation, mode, base_url, problems, seen)
    return problems, seen


def _fuzz_one(
    operation, mode: GenerationMode, base_url: str, problems: list[str], seen: list
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    checks = [not_a_server_error]
    if mode is GenerationMode.POSITIVE:
        checks += [status_code_conformance, response_schema_conformance]

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        seen.append((operation.label, response.status_code))
        try:
            case.validate_response(response, checks=checks)
        except Exception as exc:  # noqa: BLE001 - collected, reported at the end
            problems.append(
                f"{operation.label} ({mode.value}): {response.status_code} "
                f"{response.text[:200]!r}: {str(exc)[:300]}"
            )

    run()


@pytest.mark.parametrize("control_db", ["sqlite"], indirect=True)
async def test_schemathesis_finds_no_server_error(api_server, control_db, clock):
    server = await api_server()
    # Something to find: a meeting and a stored recording (a local file).
    body = {"endDate": iso_utc(clock.now + timedelta(hours=1))}
    assert (await call("POST", server.base_url + "/v1/meetings", body=body)).status == 201
    add_recording(
        control_db,
        destination={"provider": "local", "bucket": "recordings", "fileFormat": "mkv"},
        location=local_file(Path("recordings"), "a.mkv", b"x" * 100),
        filename="a.mkv",
    )
    document = (await call("GET", server.base_url + "/v1/openapi.json")).body
    problems, seen = await asyncio.to_thread(_fuzz, document, server.base_url + "/v1")
    assert problems == [], "\n".join(problems[:10])
    # It did reach the server: every operation was called, with successes and refusals.
    assert {label for label, _ in seen} == {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    statuses = {status for _, status in seen}
    assert {200, 201, 204, 400, 404} <= statuses, statuses
