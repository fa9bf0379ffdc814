"""Emulator legacy routes (A15): 308 with deprecation headers until the sunset, 404 after."""

from __future__ import annotations

from datetime import datetime, timezone

import aiohttp
import pytest

from aurous_async.testing import run_emulator

pytestmark = pytest.mark.anyio

BEFORE = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()
SUNSET = datetime(2026, 8, 4, tzinfo=timezone.utc).timestamp()
AFTER = datetime(2026, 9, 1, tzinfo=timezone.utc).timestamp()
ROUTES = [
    ("GET", "/v1/generations", "/v1/images"),
    ("POST", "/v1/generations", "/v1/images"),
    ("GET", "/v1/generations/img_01ABC", "/v1/images/img_01ABC"),
    ("POST", "/v1/video-generations", "/v1/videos"),
    ("GET", "/v1/video-generations/vid_01ABC", "/v1/images/vid_01ABC"),
]


@pytest.mark.parametrize(("method", "path", "target"), ROUTES)
async def test_legacy_routes_redirect_before_the_sunset(
    method: str, path: str, target: str
) -> None:
    """Each legacy route answers 308 to its new path with Aurous-Deprecated and Sunset."""
    async with run_emulator(start_time=BEFORE) as emu, aiohttp.ClientSession() as http:
        async with http.request(
            method, f"{emu.base_url}{path}", allow_redirects=False, json={"prompt": "x"}
        ) as r:
            assert r.status == 308
            assert r.headers["Location"] == f"{emu.base_url}{target}"
            assert r.headers["Aurous-Deprecated"] == "route"
            assert r.headers["Sunset"] == "Tue, 04 Aug 2026 00:00:00 GMT"
            assert r.headers["Aurous-Version"] == "2026-05-15"
            assert "X-RateLimit-Limit" not in r.headers
        assert emu.generations() == []


async def test_query_string_is_kept() -> None:
    """The redirect keeps the query string (a legacy list call keeps its paging)."""
    query = "?limit=2&starting_after=img_01X"
    async with (
        run_emulator(start_time=BEFORE) as emu,
        aiohttp.ClientSession(emu.base_url) as http,
        http.get(f"/v1/generations{query}", allow_redirects=False) as r,
    ):
        assert r.headers["Location"] == f"{emu.base_url}/v1/images{query}"


async def test_following_the_redirect_creates_at_the_new_path() -> None:
    """A client that follows the 308 re-POSTs the body to /v1/images and gets a 201."""
    async with (
        run_emulator(start_time=BEFORE) as emu,
        aiohttp.ClientSession(headers={"X-Api-Key": emu.api_key}) as http,
    ):
        async with http.post(f"{emu.base_url}/v1/generations", json={"prompt": "x"}) as r:
            assert r.status == 201
            assert (await r.json())["id"].startswith("img_")
            assert r.history[0].status == 308
        assert len(emu.generations()) == 1


@pytest.mark.parametrize(("method", "path", "target"), ROUTES)
async def test_legacy_routes_are_gone_after_the_sunset(method: str, path: str, target: str) -> None:
    """After 2026-08-04 (emulator clock) every legacy route is a plain 404."""
    async with (
        run_emulator(start_time=AFTER) as emu,
        aiohttp.ClientSession(emu.base_url) as http,
        http.request(method, path, allow_redirects=False) as r,
    ):
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "resource_not_found"
        assert "Sunset" not in r.headers
        assert "Location" not in r.headers


async def test_sunset_is_crossed_on_the_emulator_clock() -> None:
    """Advancing the emulator clock past the sunset turns the 308 into a 404."""
    async with run_emulator(start_time=SUNSET - 10) as emu, aiohttp.ClientSession() as http:
        url = f"{emu.base_url}/v1/generations/img_01ABC"
        async with http.get(url, allow_redirects=False) as r:
            assert r.status == 308
        emu.advance(10)
        async with http.get(url, allow_redirects=False) as r:
            assert r.status == 404


async def test_location_percent_encodes_what_the_path_decoded() -> None:
    """An id with non-ASCII or reserved characters redirects to its percent-encoded form."""
    async with run_emulator(start_time=BEFORE) as emu, aiohttp.ClientSession() as http:
        path = "/v1/generations/%C3%A9%20x%2F?limit=%C3%A9"
        async with http.get(f"{emu.base_url}{path}", allow_redirects=False) as r:
            assert r.status == 308
            assert r.headers["Location"] == f"{emu.base_url}/v1/images/%C3%A9%20x%2F?limit=%C3%A9"
