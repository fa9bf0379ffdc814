"""Emulator output routes: signed PNG and MP4 bytes, Range, retention and the no-leak rule."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from aurous_async.testing import Emulator, run_emulator
from aurous_async.testing._imageinfo import make_png
from aurous_async.testing._media import mp4, png

pytestmark = pytest.mark.anyio

LONG = 3600.0
RETENTION = 24 * 3600.0


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator() as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A session with no API key: output URLs must work on their token alone."""
    async with aiohttp.ClientSession(emu.base_url) as session:
        yield session


async def finished(
    emu: Emulator, path: str = "/v1/images", wait: float = LONG, **body: Any
) -> dict[str, Any]:
    """Create a generation with the demo key and run it to its end."""
    async with aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as s:
        async with s.post(path, json=body) as r:
            assert r.status == 201, await r.text()
            created = await r.json()
        emu.advance(wait)
        async with s.get(f"/v1/images/{created['id']}") as r:
            row: dict[str, Any] = await r.json()
            return row


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, raw scanlines), checking every chunk CRC and the zlib stream."""
    chunks = png_chunks(data)
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1][0] == b"IEND"
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (depth, colour) == (8, 3)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (width + 1)
    return width, height, raw


def boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        assert size >= 8
        out.append((kind, data[pos + 8 : pos + size]))
        pos += size
    assert pos == len(data)
    return out


async def test_image_outputs_are_valid_pngs_of_the_generation_size(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Each output n is a decodable PNG declaring the generation's width and height."""
    row = await finished(emu, prompt="a harbour", size="2k_16_9", count=2, seed=7)
    bodies = []
    for n, url in enumerate(row["output_urls"]):
        async with http.get(local(url)) as r:
            assert r.status == 200
            assert r.content_type == "image/png"
            assert "X-RateLimit-Limit" not in r.headers
            data = await r.read()
        assert decode_png(data)[:2] == (2048, 1152)
        assert data == png(2048, 1152, "a harbour", 7 + n)
        bodies.append(data)
    assert bodies[0] != bodies[1]


async def test_largest_png_is_cheap_and_exact() -> None:
    """A 4096x4096 PNG is generated in well under a second, small, and decodes to full size."""
    started = time.perf_counter()
    data = png(4096, 4096, "huge", 123)
    assert time.perf_counter() - started < 1.0
    assert len(data) < 512 * 1024
    width, height, raw = decode_png(data)
    assert (width, height) == (4096, 4096)
    assert raw[0] == 0


async def test_png_is_deterministic_per_prompt_and_seed() -> None:
    """The same prompt and seed give the same bytes; another seed gives other colours."""
    assert png(1024, 1024, "p", 1) == png(1024, 1024, "p", 1)
    assert png(1024, 1024, "p", 1) != png(1024, 1024, "p", 2)


async def test_token_rules_and_api_key_fallback(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Bad, missing or foreign tokens are 404; the owner's API key works without a token."""
    row = await finished(emu, prompt="x")
    url = local(row["output_urls"][0])
    path, _, token = url.partition("?token=")
    other = emu.add_team()
    refused = [
        (path, {}),
        (f"{path}?token=garbage", {}),
        (f"{path}?token={token[:-2]}xx", {}),
        (path.replace("/output/0", "/output/1") + f"?token={token}", {}),
        (path, {"X-Api-Key": other.api_key}),
        (path, {"X-Api-Key": "al_live_" + "0" * 64}),
        (path.replace(row["id"], "img_01NOPE"), {"X-Api-Key": emu.api_key}),
        (f"{path[:-1]}1", {"X-Api-Key": emu.api_key}),
        (f"{path[:-1]}x", {"X-Api-Key": emu.api_key}),
    ]
    for target, headers in refused:
        async with http.get(target, headers=headers) as r:
            assert r.status == 404, target
            error = (await r.json())["error"]
            assert (error["type"], error["code"]) == ("not_found", "resource_not_found")
    for headers in ({"X-Api-Key": emu.api_key}, {"Authorization": f"Bearer {emu.api_key}"}):
        async with http.get(path, headers=headers) as r:
            assert r.status == 200


async def test_outputs_expire_after_retention(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Past the retention window both token and API-key access answer 410 output_expired."""
    image = await finished(emu, prompt="x")
    video = await finished(emu, "/v1/videos", video_lora_id="seedance-1-lite")
    emu.advance(RETENTION)
    for url in (image["output_urls"][0], video["output_video_url"]):
        async with http.get(local(url)) as r:
            assert r.status == 410
            error = (await r.json())["error"]
            assert (error["type"], error["code"]) == ("not_found", "output_expired")
        async with http.get(urlsplit(url).path, headers={"X-Api-Key": emu.api_key}) as r:
            assert r.status == 410


async def test_output_retention_setting() -> None:
    """output_retention shortens the window; the URL works until then."""
    async with (
        run_emulator(output_retention=60.0) as emu,
        aiohttp.ClientSession(emu.base_url) as http,
    ):
        row = await finished(emu, prompt="x", width=1024, height=1024, steps=1, wait=30)
        assert row["status"] == "succeeded"
        async with http.get(local(row["output_urls"][0])) as r:
            assert r.status == 200
        emu.advance(60)
        async with http.get(local(row["output_urls"][0])) as r:
            assert r.status == 410


@pytest.mark.parametrize("outcome", ["failed", "cancelled", "moderation_rejected", "running"])
async def test_no_output_is_422(emu: Emulator, http: aiohttp.ClientSession, outcome: str) -> None:
    """A generation without output (failed, cancelled, running) is 422 output_not_available."""
    async with aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as s:
        async with s.post("/v1/images", json={"prompt": "x"}) as r:
            row = await r.json()
        if outcome == "cancelled":
            async with s.post(f"/v1/images/{row['id']}/cancel") as r:
                assert r.status == 200
        elif outcome != "running":
            emu.force_outcome(row["id"], outcome)
        async with s.get(f"/v1/images/{row['id']}/output/0") as r:
            assert r.status == 422
            error = (await r.json())["error"]
            assert (error["type"], error["code"]) == ("invalid_request", "output_not_available")
    async with http.get(f"/v1/images/{row['id']}/output/0") as r:
        assert r.status == 404


async def test_video_output_is_an_mp4(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """The video output is an ISO BMFF file (ftyp, moov, mdat) declaring the frame size."""
    row = await finished(
        emu, "/v1/videos", video_lora_id="seedance-1-lite", resolution="720p", duration=3
    )
    async with http.get(local(row["output_video_url"])) as r:
        assert r.status == 200
        assert r.content_type == "video/mp4"
        assert r.headers["Accept-Ranges"] == "bytes"
        data = await r.read()
    top = boxes(data)
    assert [kind for kind, _ in top] == [b"ftyp", b"moov", b"mdat"]
    assert top[0][1][:4] == b"isom"
    moov = dict(boxes(top[1][1]))
    timescale, duration = struct.unpack(">II", moov[b"mvhd"][12:20])
    assert duration / timescale == 3
    tkhd = dict(boxes(moov[b"trak"]))[b"tkhd"]
    width, height = struct.unpack(">II", tkhd[-8:])
    assert (width >> 16, height >> 16) == (row["width"], row["height"]) == (1280, 720)


async def test_video_range_requests(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Range gives 206 with Content-Range (first, open-ended, suffix); unsatisfiable is 416."""
    row = await finished(emu, "/v1/videos", video_lora_id="seedance-1-lite")
    url = local(row["output_video_url"])
    async with http.get(url) as r:
        whole = await r.read()
    total = len(whole)
    cases = [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, total - 1),
        ("bytes=-50", total - 50, total - 1),
        (f"bytes=10-{total + 500}", 10, total - 1),
    ]
    for header, start, end in cases:
        async with http.get(url, headers={"Range": header}) as r:
            assert r.status == 206, header
            assert r.headers["Content-Range"] == f"bytes {start}-{end}/{total}"
            assert await r.read() == whole[start : end + 1]
    for header in (f"bytes={total}-", "bytes=-0", "bytes=50-10"):
        async with http.get(url, headers={"Range": header}) as r:
            assert r.status == 416, header
            assert r.headers["Content-Range"] == f"bytes */{total}"
    async with http.get(url, headers={"Range": "bytes=0-1,5-6"}) as r:
        assert (r.status, len(await r.read())) == (200, total)
    async with http.get(url, headers={"Range": "bytes=abc"}) as r:
        assert r.status == 400


async def test_routes_do_not_cross_modalities(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """The image route refuses a vid_ id and the video route an img_ id, even for the owner."""
    image = await finished(emu, prompt="x")
    video = await finished(emu, "/v1/videos", video_lora_id="seedance-1-lite")
    owner = {"X-Api-Key": emu.api_key}
    async with http.get(f"/v1/images/{video['id']}/output/0", headers=owner) as r:
        assert r.status == 404
    async with http.get(f"/v1/videos/{image['id']}/output", headers=owner) as r:
        assert r.status == 404


async def test_mp4_size_scales_with_duration() -> None:
    """Longer videos make bigger files; the builder is deterministic."""
    assert mp4(848, 480, 2, "s") == mp4(848, 480, 2, "s")
    assert len(mp4(848, 480, 12, "s")) > len(mp4(848, 480, 2, "s"))


async def byte_urls(emu: Emulator) -> dict[str, str]:
    """A signed URL of each byte route: image and video output, file and ref content."""
    image = await finished(emu, prompt="ranged")
    video = await finished(emu, "/v1/videos", video_lora_id="seedance-1-lite", duration=2)
    async with aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as s:
        async with s.post("/v1/characters", json={"name": "R", "generate": True}) as r:
            character = await r.json()
        emu.advance(LONG)
        async with s.get(f"/v1/characters/{character['id']}") as r:
            character = await r.json()
        form = aiohttp.FormData()
        png_bytes = make_png(40, 30, (5, 6, 7))
        form.add_field("file", png_bytes, filename="f.png", content_type="image/png")
        form.add_field("purpose", "reference")
        async with s.post("/v1/files", data=form) as r:
            stored = await r.json()
    return {
        "image": local(image["output_urls"][0]),
        "video": local(video["output_video_url"]),
        "file": local(stored["url"]),
        "ref": local(character["refs"][0]["url"]),
    }


async def test_every_byte_route_honours_range(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Every byte route: Accept-Ranges on 200, 206 for N- and N-M, 416 past the end."""
    for name, url in (await byte_urls(emu)).items():
        async with http.get(url) as r:
            assert (r.status, r.headers["Accept-Ranges"]) == (200, "bytes"), name
            whole = await r.read()
        total = len(whole)
        for header, start, end in (("bytes=7-", 7, total - 1), ("bytes=2-5", 2, 5)):
            async with http.get(url, headers={"Range": header}) as r:
                assert r.status == 206, (name, header)
                assert r.headers["Content-Range"] == f"bytes {start}-{end}/{total}", name
                assert r.headers["Accept-Ranges"] == "bytes"
                assert await r.read() == whole[start : end + 1], name
        async with http.get(url, headers={"Range": f"bytes={total}-"}) as r:
            assert r.status == 416, name
            assert r.headers["Content-Range"] == f"bytes */{total}"
            assert (await r.json())["error"]["param"] == "Range"
