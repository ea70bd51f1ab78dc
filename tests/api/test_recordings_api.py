"""/v1/recordings: lists, sorting and pages, access links (S3 presigned, local signed
downloads), deletion through the sink, and the refusals (403, 404, 409, 400)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import pytest
from api_helpers import add_recording, call, local_file
from yarl import URL

LOCAL = {"provider": "local", "bucket": "recordings", "fileFormat": "mkv"}


async def get_bytes(url: str) -> tuple[int, bytes]:
    # As given: a presigned URL's escapes are part of what was signed.
    async with aiohttp.ClientSession() as http, http.get(URL(url, encoded=True)) as response:
        return response.status, await response.read()


async def test_lists_sort_and_pages(api_server, control_db):
    server = await api_server()
    base = server.base_url + "/v1/recordings"
    ids = {}
    for room, size in [("b-room", 3_000_000), ("a-room", 1_000_000), ("c", None)]:
        status = "recording" if size is None else "stored"
        ids[room] = add_recording(control_db, room=room, status=status, size_bytes=size)
        time.sleep(0.01)  # distinct start dates
    answer = await call("GET", base + "?sortBy=roomName:asc")
    assert [r["roomName"] for r in answer.body["results"]] == ["/a-room", "/b-room", "/c"]
    answer = await call("GET", base + "?sortBy=sizeInMegaBytes:desc")
    assert [r["sizeInMegaBytes"] for r in answer.body["results"]] == [3.0, 1.0, None]
    running = answer.body["results"][2]
    assert running["status"] == "recording" and running["endDate"] is None

    seen, cursor = [], None
    while True:
        url = base + "?limit=1&sortBy=duration:asc" + (f"&cursor={cursor}" if cursor else "")
        page = await call("GET", url)
        assert page.status == 200, page.body
        seen += [r["recordingId"] for r in page.body["results"]]
        cursor = page.body["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids.values()) and len(seen) == 3

    for query, field in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("sortBy=colour:asc", "sortBy"),
        ("cursor=not-a-cursor", "cursor"),
    ]:
        answer = await call("GET", f"{base}?{query}")
        assert answer.status == 400, (query, answer.body)
        assert [f["field"] for f in answer.body["fields"]] == [field]


async def test_local_download_links_are_signed_expire_and_stay_in_the_folder(
    api_server, control_db, clock
):
    server = await api_server()
    base = server.base_url + "/v1/recordings"
    data = b"local bytes" * 1000
    # A row may carry recfw's own marks next to the REST fields (here: "follows the default").
    marked = LOCAL | {"recfwFollowsDefault": True}
    rid = add_recording(
        control_db, destination=marked, location=local_file(Path("recordings"), "a.mkv", data)
    )
    answer = await call("GET", f"{base}/{rid}/access-link?validForSeconds=60")
    assert answer.status == 200, answer.body
    link = answer.body["accessLink"]
    assert answer.body["expires"] == int((clock.now.timestamp() + 60) * 1000)
    assert (await get_bytes(link)) == (200, data)

    tampered = link.replace("signature=", "signature=0")
    assert (await get_bytes(tampered))[0] == 403
    other = add_recording(
        control_db, destination=LOCAL, location=local_file(Path("recordings"), "b.mkv", b"b")
    )
    assert (await get_bytes(link.replace(rid, other)))[0] == 403  # signed for the other one
    clock.advance(seconds=61)
    status, body = await get_bytes(link)
    assert status == 403 and b"expired" in body

    # A row whose location points outside its destination folder is never served.
    outside = add_recording(
        control_db, destination=LOCAL, location=local_file(Path("elsewhere"), "x.mkv", b"no")
    )
    answer = await call("GET", f"{base}/{outside}/access-link")
    assert answer.status == 409 and "not inside" in answer.body["error"]

    for query in ("validForSeconds=0", "validForSeconds=43201", "validForSeconds=soon"):
        answer = await call("GET", f"{base}/{rid}/access-link?{query}")
        assert answer.status == 400
        assert answer.body["fields"][0]["field"] == "validForSeconds"


async def test_s3_links_are_presigned_and_deletion_removes_the_object(
    api_server, control_db, s3_server, s3_bucket, tmp_path
):
    server = await api_server()
    base = server.base_url + "/v1/recordings"
    destination = s3_server.destination(s3_bucket, "meetings").to_dict(reveal=True)
    key = "meetings/standup-2026-11-30T10:00:00Z.mkv"
    s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"s3 bytes")
    rid = add_recording(control_db, destination=destination, location=f"s3://{s3_bucket}/{key}")

    answer = await call("GET", f"{base}/{rid}/access-link?validForSeconds=120")
    assert answer.status == 200, answer.body
    link = answer.body["accessLink"]
    assert unquote(urlsplit(link).path) == f"/{s3_bucket}/{key}" and "Signature" in link
    assert destination["accessKeySecret"] not in answer.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    if "X-Amz-Signature" in query:  # SigV4
        assert query["X-Amz-Expires"] == "120"
        assert query["X-Amz-Credential"].startswith(destination["accessKeyId"] + "/")
    else:  # query-string auth as s3fs signs it for this endpoint
        assert query["AWSAccessKeyId"] == destination["accessKeyId"], query
        assert abs(int(query["Expires"]) - (time.time() + 120)) < 60
        assert query["Signature"]
    # moto's enforced authentication cannot check query-string (presigned) signatures
    # (it looks for an Authorization header): fetch it with the check off.
    previous = s3_server._set_auth("inf")
    try:
        assert (await get_bytes(link)) == (200, b"s3 bytes")
    finally:
        s3_server._set_auth(str(previous))

    for _ in range(2):
        assert (await call("DELETE", f"{base}/{rid}")).status == 204
    assert s3_server.keys(s3_bucket) == []


async def test_refusals(api_server, control_db, tmp_path):
    server = await api_server()
    base = server.base_url + "/v1/recordings"
    memory = {"provider": "fsspec", "bucket": "memory://recfw-api-test", "fileFormat": "mkv"}
    in_memory = add_recording(
        control_db, destination=memory, location="memory://recfw-api-test/a.mkv"
    )
    answer = await call("GET", f"{base}/{in_memory}/access-link")
    assert answer.status == 403 and "cannot give access links" in answer.body["error"]

    kept = add_recording(
        control_db,
        status="kept",
        destination=LOCAL,
        spool_path=local_file(tmp_path / "spool", "k.mkv", b"k"),
        reason="the bucket was unreachable",
    )
    answer = await call("GET", f"{base}/{kept}/access-link")
    assert answer.status == 409 and "unreachable" in answer.body["error"]
    answer = await call("DELETE", f"{base}/{kept}")
    assert answer.status == 409 and "kept" in answer.body["error"]
    assert (tmp_path / "spool" / "k.mkv").exists()  # nothing is lost

    for method, path in (("GET", "/nope"), ("GET", "/nope/access-link")):
        answer = await call(method, base + path)
        assert answer.status == 404 and answer.body["error"] == "no such recording"
    assert (await call("DELETE", base + "/nope")).status == 204

    for body, field in (
        ({}, "recordingIds"),
        ({"recordingIds": "a"}, "recordingIds"),
        ({"recordingIds": ["a", 3]}, "recordingIds[1]"),
        ({"recordingIds": [], "colour": 1}, "colour"),
    ):
        answer = await call("POST", base + "/bulk-delete", body=body)
        assert answer.status == 400 and [f["field"] for f in answer.body["fields"]] == [field]
    for key in (None, "wrong"):
        assert (await call("GET", base, key=key)).status == 401


@pytest.mark.parametrize("control_db", ["sqlite"], indirect=True)
async def test_a_recording_row_from_the_engine_is_listed(api_server, control_db):
    """Rows written by the engine's events (another part of recfw) carry every field."""
    server = await api_server()
    rid = add_recording(control_db, status="recording")
    answer = await call("GET", f"{server.base_url}/v1/recordings/{rid}")
    assert answer.status == 200 and answer.body["status"] == "recording"
