"""The emulator's /v1/files: multipart upload, limits by real header, URLs, TTL, delete."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from aurous_async.testing import Emulator, run_emulator
from aurous_async.testing._errors import ApiError
from aurous_async.testing._files import MAX_FILE_BYTES

from ._cf_support import (
    assert_golden_shape,
    jpeg,
    png,
    png_header,
    webp_extended,
    webp_lossless,
)

pytestmark = pytest.mark.anyio

HOUR = 3600.0


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator() as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.base_url) as session:
        yield session


def key(secret: str, **extra: str) -> dict[str, str]:
    return {"X-Api-Key": secret, **extra}


def form(
    data: bytes | None = None,
    *,
    purpose: str | None = "reference",
    metadata: str | None = None,
    filename: str = "ref.png",
    content_type: str = "image/png",
    extra: dict[str, str] | None = None,
) -> aiohttp.FormData:
    body = aiohttp.FormData(default_to_multipart=True)
    if data is not None:
        # A BytesIO, since aiohttp warns about large raw bytes bodies.
        body.add_field("file", io.BytesIO(data), filename=filename, content_type=content_type)
    if purpose is not None:
        body.add_field("purpose", purpose)
    if metadata is not None:
        body.add_field("metadata", metadata)
    for name, value in (extra or {}).items():
        body.add_field(name, value)
    return body


async def upload(
    http: aiohttp.ClientSession, secret: str, data: bytes | None = None, **kwargs: Any
) -> dict[str, object]:
    async with http.post(
        "/v1/files", data=form(png() if data is None else data, **kwargs), headers=key(secret)
    ) as response:
        assert response.status == 201, await response.text()
        body: dict[str, object] = await response.json()
        return body


async def error_of(response: aiohttp.ClientResponse) -> tuple[int, str, str | None]:
    error = (await response.json())["error"]
    return response.status, error["code"], error["param"]


def ts(value: object) -> float:
    assert isinstance(value, str)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def test_upload_answers_201_with_the_file_object(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A PNG upload is 201 with the §10 file object; the signed URL serves the same bytes."""
    data = png(3, 5)
    body = await upload(http, emu.api_key, data, metadata='{"campaign": "launch-2026"}')
    assert str(body["id"]).startswith("file_")
    assert body["object"] == "file"
    assert body["purpose"] == "reference"
    assert (body["mime_type"], body["size_bytes"]) == ("image/png", len(data))
    assert (body["width_px"], body["height_px"]) == (3, 5)
    assert body["metadata"] == {"campaign": "launch-2026"}
    assert ts(body["expires_at"]) - ts(body["created_at"]) == 24 * HOUR
    assert emu.requests[-1].bucket == "files"
    async with aiohttp.ClientSession() as anonymous, anonymous.get(str(body["url"])) as content:
        assert content.status == 200
        assert content.content_type == "image/png"
        assert await content.read() == data


async def test_file_object_matches_the_golden_example(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """The upload response has every field of the contract's file example."""
    assert_golden_shape(await upload(http, emu.api_key, metadata='{"a": "b"}'), "file.json")


@pytest.mark.parametrize(
    ("data", "mime", "size"),
    [
        (png(7, 9), "image/png", (7, 9)),
        (jpeg(640, 480), "image/jpeg", (640, 480)),
        (jpeg(12, 34, sof=0xC2, exif=True), "image/jpeg", (12, 34)),
        (webp_lossless(), "image/webp", (1, 1)),
        (webp_extended(4096, 4096), "image/webp", (4096, 4096)),
    ],
)
async def test_type_and_size_come_from_the_real_header(
    emu: Emulator,
    http: aiohttp.ClientSession,
    data: bytes,
    mime: str,
    size: tuple[int, int],
) -> None:
    """mime_type and pixel size are read from the bytes, whatever the part claims to be."""
    body = await upload(
        http, emu.api_key, data, filename="x.gif", content_type="application/octet-stream"
    )
    assert body["mime_type"] == mime
    assert (body["width_px"], body["height_px"]) == size


@pytest.mark.parametrize("purpose", ["reference", "first_frame", "last_frame"])
async def test_every_documented_purpose_is_accepted(
    emu: Emulator, http: aiohttp.ClientSession, purpose: str
) -> None:
    """The three purposes of §10 are stored and echoed; metadata defaults to {}."""
    body = await upload(http, emu.api_key, purpose=purpose)
    assert (body["purpose"], body["metadata"]) == (purpose, {})


async def test_size_limit_is_ten_megabytes(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Exactly 10 MB is accepted; one byte more is 400 value_out_of_range on file."""
    exact = png(1, 1).ljust(MAX_FILE_BYTES, b"\x00")
    body = await upload(http, emu.api_key, exact)
    assert body["size_bytes"] == MAX_FILE_BYTES
    async with http.post(
        "/v1/files", data=form(exact + b"\x00"), headers=key(emu.api_key)
    ) as response:
        assert await error_of(response) == (400, "value_out_of_range", "file")


async def test_side_limit_is_4096_pixels(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """4096 px per side is accepted; 4097 on either side is 400 value_out_of_range."""
    await upload(http, emu.api_key, png_header(4096, 4096))
    for width, height in ((4097, 10), (10, 4097)):
        async with http.post(
            "/v1/files", data=form(png_header(width, height)), headers=key(emu.api_key)
        ) as response:
            assert await error_of(response) == (400, "value_out_of_range", "file")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (form(None), ("missing_field", "file")),
        (form(png(), purpose=None), ("missing_field", "purpose")),
        (form(png(), purpose="thumbnail"), ("invalid_format", "purpose")),
        (form(b"GIF89a\x01\x00\x01\x00;"), ("invalid_format", "file")),
        (form(b"not an image at all"), ("invalid_format", "file")),
        (form(b""), ("invalid_format", "file")),
        (form(png(), metadata="{not json"), ("invalid_format", "metadata")),
        (form(png(), metadata="[1, 2]"), ("invalid_format", "metadata")),
        (form(png(), metadata='{"n": 1}'), ("invalid_format", "metadata")),
        (form(png(), metadata=json.dumps({"k": "x" * 501})), ("value_out_of_range", "metadata")),
        (
            form(png(), metadata=json.dumps({str(i): "v" for i in range(51)})),
            ("value_out_of_range", "metadata"),
        ),
        (form(png(), extra={"mode": "fast"}), ("invalid_format", "mode")),
    ],
    ids=[
        "no-file",
        "no-purpose",
        "bad-purpose",
        "gif",
        "text",
        "empty-file",
        "metadata-not-json",
        "metadata-not-object",
        "metadata-non-string-value",
        "metadata-long-value",
        "metadata-too-many-keys",
        "unknown-part",
    ],
)
async def test_bad_uploads_name_the_offending_part(
    emu: Emulator,
    http: aiohttp.ClientSession,
    body: aiohttp.FormData,
    expected: tuple[str, str],
) -> None:
    """Each invalid multipart body is a 400 with its documented code and param."""
    async with http.post("/v1/files", data=body, headers=key(emu.api_key)) as response:
        assert await error_of(response) == (400, *expected)


async def test_json_body_is_refused(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """POST /v1/files takes multipart only: a JSON body is 400 invalid_format, param null."""
    async with http.post(
        "/v1/files", json={"purpose": "reference"}, headers=key(emu.api_key)
    ) as response:
        assert await error_of(response) == (400, "invalid_format", None)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"no boundary"),
        ("multipart/form-data; boundary=xx", b"no parts here"),
        (
            "multipart/form-data; boundary=xx",
            b'--xx\r\nContent-Disposition: form-data; name="purpose"',
        ),
    ],
    ids=["no-boundary", "no-parts", "truncated"],
)
async def test_malformed_multipart_is_a_400(
    emu: Emulator, http: aiohttp.ClientSession, content_type: str, body: bytes
) -> None:
    """A broken multipart body is 400 invalid_format with a null param, never a 500."""
    headers = key(emu.api_key, **{"Content-Type": content_type})
    async with http.post("/v1/files", data=body, headers=headers) as response:
        assert await error_of(response) == (400, "invalid_format", None)


async def test_get_remints_a_fresh_one_hour_url(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """GET returns the same file with a new 1 h URL; an old URL then answers 410."""
    created = await upload(http, emu.api_key)
    emu.advance(30 * 60)
    async with http.get(f"/v1/files/{created['id']}", headers=key(emu.api_key)) as response:
        assert response.status == 200
        fetched = await response.json()
    assert emu.requests[-1].bucket == "get"
    assert {k: v for k, v in fetched.items() if k != "url"} == {
        k: v for k, v in created.items() if k != "url"
    }
    assert fetched["url"] != created["url"]
    emu.advance(31 * 60)
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(str(created["url"])) as stale:
            assert await error_of(stale) == (410, "output_expired", None)
        async with anonymous.get(fetched["url"]) as fresh:
            assert fresh.status == 200
        async with anonymous.get(fetched["url"].split("?")[0]) as unsigned:
            assert await error_of(unsigned) == (404, "resource_not_found", None)
        async with anonymous.get(fetched["url"] + "x") as forged:
            assert forged.status == 404


async def test_files_are_purged_after_24_hours(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """At expires_at the file is gone: GET 404 on file_id, its URL 404, DELETE still 200."""
    created = await upload(http, emu.api_key)
    emu.advance(24 * HOUR - 60)
    async with http.get(f"/v1/files/{created['id']}", headers=key(emu.api_key)) as response:
        assert response.status == 200
        url = (await response.json())["url"]
    emu.advance(60)
    async with http.get(f"/v1/files/{created['id']}", headers=key(emu.api_key)) as response:
        assert await error_of(response) == (404, "resource_not_found", "file_id")
    async with aiohttp.ClientSession() as anonymous, anonymous.get(url) as content:
        assert content.status == 404
    async with http.delete(f"/v1/files/{created['id']}", headers=key(emu.api_key)) as response:
        assert response.status == 200


async def test_delete_is_idempotent_and_always_200(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """DELETE purges now, answers the documented body every time, even for unknown ids."""
    created = await upload(http, emu.api_key)
    file_id = str(created["id"])
    for target in (file_id, file_id, "file_01UNKNOWN"):
        async with http.delete(f"/v1/files/{target}", headers=key(emu.api_key)) as response:
            assert response.status == 200
            body = await response.json()
            assert body == {"deleted": True, "id": target, "object": "file"}
            assert emu.requests[-1].bucket == "default"
    async with http.get(f"/v1/files/{file_id}", headers=key(emu.api_key)) as response:
        assert await error_of(response) == (404, "resource_not_found", "file_id")
    async with aiohttp.ClientSession() as anonymous, anonymous.get(str(created["url"])) as gone:
        assert gone.status == 404


async def test_delete_response_matches_the_golden_example(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """The delete response has every field of the contract's example."""
    async with http.delete("/v1/files/file_01X", headers=key(emu.api_key)) as response:
        assert_golden_shape(await response.json(), "file_deleted.json")


async def test_files_are_private_to_their_team(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Another team gets 404 on GET, and its DELETE answers 200 without deleting anything."""
    created = await upload(http, emu.api_key)
    other = emu.add_team()
    path = f"/v1/files/{created['id']}"
    async with http.get(path, headers=key(other.api_key)) as response:
        assert await error_of(response) == (404, "resource_not_found", "file_id")
    async with http.delete(path, headers=key(other.api_key)) as response:
        assert response.status == 200
    async with http.get(path, headers=key(emu.api_key)) as response:
        assert response.status == 200


async def test_scopes(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A read key may GET a file but not upload or delete one (403 missing_scope)."""
    created = await upload(http, emu.api_key)
    reader = emu.add_key(emu.team_id, "read")
    async with http.get(f"/v1/files/{created['id']}", headers=key(reader)) as response:
        assert response.status == 200
    async with http.post("/v1/files", data=form(png()), headers=key(reader)) as response:
        assert await error_of(response) == (403, "missing_scope", None)
    async with http.delete(f"/v1/files/{created['id']}", headers=key(reader)) as response:
        assert await error_of(response) == (403, "missing_scope", None)
    async with http.get(f"/v1/files/{created['id']}") as response:
        assert await error_of(response) == (401, "missing_api_key", None)


async def test_idempotent_upload_replays_on_same_purpose_and_metadata(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Same key + purpose + metadata (any key order, any bytes) replays the first 201."""
    headers = key(emu.api_key, **{"Idempotency-Key": "files-key-1"})
    first_form = form(png(2, 2), metadata='{"a": "1", "b": "2"}')
    async with http.post("/v1/files", data=first_form, headers=headers) as response:
        assert response.status == 201
        assert "Aurous-Idempotent-Replayed" not in response.headers
        first = await response.read()
    replay_form = form(jpeg(), metadata='{"b": "2", "a": "1"}')
    async with http.post("/v1/files", data=replay_form, headers=headers) as response:
        assert response.status == 201
        assert response.headers["Aurous-Idempotent-Replayed"] == "true"
        assert await response.read() == first
    conflicts = (
        form(png(2, 2), metadata='{"a": "1", "b": "3"}'),
        form(png(2, 2), purpose="first_frame", metadata='{"a": "1", "b": "2"}'),
    )
    for body in conflicts:
        async with http.post("/v1/files", data=body, headers=headers) as response:
            assert await error_of(response) == (409, "idempotency_key_in_use", "Idempotency-Key")
    created = json.loads(first)
    async with http.get(f"/v1/files/{created['id']}", headers=key(emu.api_key)) as response:
        assert response.status == 200


async def test_a_rejected_upload_does_not_burn_its_idempotency_key(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A 400 first attempt is not cached: the same key then succeeds with a valid file."""
    headers = key(emu.api_key, **{"Idempotency-Key": "files-key-2"})
    async with http.post("/v1/files", data=form(b"GIF89a"), headers=headers) as response:
        assert response.status == 400
    async with http.post("/v1/files", data=form(png()), headers=headers) as response:
        assert response.status == 201
        assert "Aurous-Idempotent-Replayed" not in response.headers


async def test_resolve_checks_team_deletion_and_expiry(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """FileStore.resolve passes live own files and raises 404 with the caller's param."""
    files = emu.state.files
    kept = await upload(http, emu.api_key)
    deleted = await upload(http, emu.api_key)
    files.resolve(emu.team_id, str(kept["id"]), "reference_image_urls")
    files.delete(emu.team_id, str(deleted["id"]))
    other = emu.add_team()
    cases = [
        (other.id, kept["id"], "reference_image_urls"),
        (emu.team_id, deleted["id"], "first_frame_url"),
        (emu.team_id, "file_01NOPE", "last_frame_url"),
    ]
    for team_id, file_id, param in cases:
        with pytest.raises(ApiError) as raised:
            files.resolve(team_id, str(file_id), param)
        assert (raised.value.status, raised.value.code, raised.value.param) == (
            404,
            "resource_not_found",
            param,
        )
    emu.advance(24 * HOUR)
    with pytest.raises(ApiError):
        files.resolve(emu.team_id, str(kept["id"]), "reference_image_urls")
