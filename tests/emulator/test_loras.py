"""Emulator LoRA catalogue: GET /v1/loras, /v1/loras/{id}, /v1/video_loras/{id}."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aurous_async.testing import Emulator, run_emulator
from aurous_async.testing._loras import GOLDEN_HOUR, PUBLIC_VIDEO_LORAS

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent.parent / "fixtures"
IMAGE_FIELDS = {
    "id",
    "name",
    "is_public",
    "created_at",
    "slug",
    "description",
    "preview_image_url",
    "default_denoise_strength",
    "default_guidance_scale",
    "default_steps",
    "has_template",
}
VIDEO_FIELDS = {
    "id",
    "name",
    "is_public",
    "default_resolution",
    "default_ratio",
    "default_duration",
    "created_at",
    "slug",
    "description",
    "preview_video_url",
}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator() as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as s:
        yield s


async def fetch(http: aiohttp.ClientSession, path: str, **headers: str) -> tuple[int, Any]:
    async with http.get(path, headers=headers) as r:
        return r.status, await r.json()


def kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__


def assert_shape(actual: dict[str, Any], golden: dict[str, Any]) -> None:
    """Every golden field is present with the same JSON type (null matches anything)."""
    for key, value in golden.items():
        assert key in actual, key
        if value is not None and actual[key] is not None:
            assert kind(actual[key]) == kind(value), key


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"tests/fixtures/{name} not written yet")
    return json.loads(path.read_text())


async def test_list_is_a_bare_array_of_public_and_private_styles(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """GET /v1/loras is a bare array: the public image styles and the team's private one."""
    status, loras = await fetch(http, "/v1/loras")
    assert status == 200
    assert isinstance(loras, list)
    assert all(set(lora) == IMAGE_FIELDS for lora in loras)
    assert loras[0]["id"] == GOLDEN_HOUR.id
    assert loras[0]["slug"] == "golden-hour-photography"
    private = [lora for lora in loras if not lora["is_public"]]
    assert [lora["slug"] for lora in private] == ["house-style"]
    assert not {lora["slug"] for lora in loras} & {v.slug for v in PUBLIC_VIDEO_LORAS}
    other = emu.add_team()
    _, theirs = await fetch(http, "/v1/loras", **{"X-Api-Key": other.api_key})
    their_private = [lora["id"] for lora in theirs if not lora["is_public"]]
    assert their_private
    assert their_private[0] != private[0]["id"]


async def test_list_is_stable_across_runs(http: aiohttp.ClientSession) -> None:
    """Public style ids are the same in every emulator run."""
    _, first = await fetch(http, "/v1/loras")
    async with (
        run_emulator() as again,
        aiohttp.ClientSession(again.base_url, headers={"X-Api-Key": again.api_key}) as s,
    ):
        _, second = await fetch(s, "/v1/loras")
    public = [lora["id"] for lora in first if lora["is_public"]]
    assert public == [lora["id"] for lora in second if lora["is_public"]]


async def test_get_by_id_slug_or_legacy_uuid(http: aiohttp.ClientSession) -> None:
    """GET /v1/loras/{id} accepts the lora_ id, the slug and the legacy UUID."""
    for ref in (GOLDEN_HOUR.id, GOLDEN_HOUR.slug, GOLDEN_HOUR.legacy_uuid):
        status, lora = await fetch(http, f"/v1/loras/{ref}")
        assert (status, lora["id"]) == (200, GOLDEN_HOUR.id)
    status, private = await fetch(http, "/v1/loras/house-style")
    assert (status, private["is_public"]) == (200, False)


async def test_private_styles_are_invisible_to_other_teams(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Another team's private style is a 404 on GET and as lora_id, like an unknown one."""
    _, mine = await fetch(http, "/v1/loras/house-style")
    other = emu.add_team()
    status, error = await fetch(http, f"/v1/loras/{mine['id']}", **{"X-Api-Key": other.api_key})
    assert (status, error["error"]["code"]) == (404, "resource_not_found")
    async with http.post(
        "/v1/images",
        json={"prompt": "x", "lora_id": mine["id"]},
        headers={"X-Api-Key": other.api_key},
    ) as r:
        body = await r.json()
        assert (r.status, body["error"]["param"]) == (404, "lora_id")
    async with http.post("/v1/images", json={"prompt": "x", "lora_id": mine["id"]}) as r:
        assert r.status == 201


@pytest.mark.parametrize("path", ["/v1/loras/nope", "/v1/loras/seedance-1-pro"])
async def test_unknown_or_video_style_on_image_route_is_404(
    http: aiohttp.ClientSession, path: str
) -> None:
    """The image route knows only image styles."""
    status, error = await fetch(http, path)
    assert (status, error["error"]["type"], error["error"]["code"]) == (
        404,
        "not_found",
        "resource_not_found",
    )


async def test_video_lora_by_id_or_slug(http: aiohttp.ClientSession) -> None:
    """GET /v1/video_loras/{id} accepts the id or slug; image styles and unknowns are 404."""
    status, by_slug = await fetch(http, "/v1/video_loras/seedance-1-pro")
    assert status == 200
    assert set(by_slug) == VIDEO_FIELDS
    assert (by_slug["default_resolution"], by_slug["default_ratio"]) == ("1080p", "16:9")
    assert by_slug["default_duration"] == 5
    status, by_id = await fetch(http, f"/v1/video_loras/{by_slug['id']}")
    assert (status, by_id) == (200, by_slug)
    for ref in ("golden-hour-photography", "nope"):
        status, _ = await fetch(http, f"/v1/video_loras/{ref}")
        assert status == 404


async def test_lora_routes_use_the_get_bucket_and_read_scope(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A read-scoped key may list styles, and the request is metered in the get bucket."""
    reader = emu.add_key(emu.team_id, "read")
    status, _ = await fetch(http, "/v1/video_loras/seedance-1-lite", **{"X-Api-Key": reader})
    assert status == 200
    assert emu.requests[-1].bucket == "get"


async def test_golden_shapes(http: aiohttp.ClientSession) -> None:
    """Image and video styles match the contract examples' field names and types."""
    golden = fixture("loras.json")[0]
    _, loras = await fetch(http, "/v1/loras")
    for lora in loras:
        assert_shape(lora, golden)
    assert {k: v for k, v in loras[0].items() if k != "preview_image_url"} == {
        k: v for k, v in golden.items() if k != "preview_image_url"
    }
    video = fixture("video_lora.json")
    _, actual = await fetch(http, "/v1/video_loras/seedance-1-pro")
    assert_shape(actual, video)
    assert actual["id"] == video["id"]
