"""Emulator generations: create, estimate, get, list, cancel, lifecycle, money and events."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from aurous_async.testing import Emulator, run_emulator
from aurous_async.testing._generation_routes import SIZE_PRESETS
from aurous_async.testing._media import png

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent.parent / "fixtures"
BLOCKED = "aurous-blocked-test-word"
GOLDEN_HOUR = "lora_01HXMQ7Z3K8Y2ABCDEFGHJKM"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
GENERATION_FIELDS = {
    "id",
    "object",
    "status",
    "media_type",
    "prompt",
    "negative_prompt",
    "created_at",
    "completed_at",
    "output_urls",
    "output_video_url",
    "reference_image_urls",
    "error_message",
    "duration_ms",
    "cost",
    "width",
    "height",
    "image_count",
    "size_preset",
    "inference_type",
    "cfg_rescale",
    "denoise_strength",
    "seed",
    "video_duration",
    "video_resolution",
    "video_ratio",
    "video_camera_fixed",
    "character_id",
    "loras",
    "aurous_version",
    "creation_request_id",
}
LONG = 3600.0


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator() as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as s:
        yield s


async def post(
    http: aiohttp.ClientSession, path: str, body: dict[str, Any], **headers: str
) -> tuple[int, Any, CIMultiDictProxy[str]]:
    async with http.post(path, json=body, headers=headers) as r:
        return r.status, await r.json(), r.headers


async def get(http: aiohttp.ClientSession, path: str) -> Any:
    async with http.get(path) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def create(http: aiohttp.ClientSession, path: str = "/v1/images", **body: Any) -> Any:
    body.setdefault("prompt", "a lighthouse at dusk")
    status, data, _ = await post(http, path, body)
    assert status == 201, data
    return data


async def balance(http: aiohttp.ClientSession) -> dict[str, Any]:
    result: dict[str, Any] = await get(http, "/v1/balance")
    return result


async def ledger(http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        path = "/v1/usage/events?limit=100" + (f"&starting_after={cursor}" if cursor else "")
        page = await get(http, path)
        rows += page["data"]
        if not page["has_more"]:
            return rows
        cursor = page["next_cursor"]


async def assert_books_balance(emu: Emulator, http: aiohttp.ClientSession) -> dict[str, Any]:
    """available == credits - held == the signed sum of the team's ledger rows (A20).

    The sign of an ``adjustment`` is not on the wire, so the sum uses the server's rows;
    the wire rows must be the same rows.
    """
    money = await balance(http)
    rows = emu.state.billing.rows[emu.team_id]
    signed = sum((row.signed() for row in rows), Decimal(0))
    assert sorted(row["id"] for row in await ledger(http)) == sorted(row.id for row in rows)
    credits, held = Decimal(str(money["credits"])), Decimal(str(money["held_credits"]))
    assert Decimal(str(money["available_credits"])) == credits - held == signed
    return money


def error_of(data: Any) -> tuple[str, str, Any]:
    error = data["error"]
    return error["type"], error["code"], error["param"]


# -- golden shapes ---------------------------------------------------------------------


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def assert_shape(actual: Any, golden: Any, where: str = "$") -> None:
    """Every golden field exists with the same JSON type (null matches anything)."""
    if golden is None or actual is None:
        return
    if where.endswith(".video_camera_fixed"):
        return  # the contract example shows {}; the emulator sends the request's bool
    assert _kind(actual) == _kind(golden), f"{where}: {_kind(actual)} != {_kind(golden)}"
    if isinstance(golden, dict):
        for key, value in golden.items():
            assert key in actual, f"{where}.{key} missing"
            assert_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(golden, list) and golden and actual:
        assert_shape(actual[0], golden[0], f"{where}[0]")


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"tests/fixtures/{name} not written yet")
    return json.loads(path.read_text())


# -- create and get -----------------------------------------------------------------------


async def test_create_image_returns_201_with_the_generation_object(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """POST /v1/images answers 201 with every §8.2 field, held cost and the creating request id."""
    status, data, headers = await post(
        http, "/v1/images", {"prompt": "a fox", "seed": 42, "lora_id": "golden-hour-photography"}
    )
    assert status == 201
    assert set(data) == GENERATION_FIELDS
    assert data["id"].startswith("img_")
    assert (data["object"], data["status"], data["media_type"]) == ("inference", "queued", "image")
    assert data["creation_request_id"] == headers["Aurous-Request-Id"]
    assert data["aurous_version"] == "2026-05-15"
    assert ISO.match(data["created_at"])
    assert data["completed_at"] is None
    assert data["duration_ms"] is None
    assert data["output_urls"] == []
    assert data["cost"] == {
        "amount": 1,
        "currency": "credit",
        "breakdown": {"base": 1, "enhance": 0},
    }
    assert (data["width"], data["height"], data["size_preset"]) == (2048, 2048, "2k_1_1")
    assert (data["image_count"], data["inference_type"], data["seed"]) == (1, "t2i", 42)
    assert data["loras"] == [{"id": GOLDEN_HOUR, "name": "Golden Hour Photography"}]
    assert data["cfg_rescale"] == 0
    assert data["denoise_strength"] == 0.8
    assert await get(http, f"/v1/images/{data['id']}") == data


async def test_initial_status_pending_setting() -> None:
    """With initial_status='pending' new generations start pending instead of queued."""
    async with (
        run_emulator(initial_status="pending") as emu,
        aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as http,
    ):
        assert (await create(http))["status"] == "pending"


async def test_lifecycle_queued_processing_succeeded(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A default 2k image is processing after ~1 s and succeeds 10-20 s later with outputs."""
    data = await create(http, count=2)
    emu.advance(1.2)
    row = await get(http, f"/v1/images/{data['id']}")
    assert row["status"] == "processing"
    emu.advance(8)
    assert (await get(http, f"/v1/images/{data['id']}"))["status"] == "processing"
    emu.advance(25)
    row = await get(http, f"/v1/images/{data['id']}")
    assert row["status"] == "succeeded"
    assert 10_000 <= row["duration_ms"] <= 35_000
    assert ISO.match(row["completed_at"])
    assert len(row["output_urls"]) == 2
    for n, url in enumerate(row["output_urls"]):
        assert url.startswith(f"{emu.base_url}/v1/images/{data['id']}/output/{n}?token=")
    assert row["output_video_url"] is None
    assert row["error_message"] is None
    assert row["cost"]["amount"] == 2


async def test_time_scale_speeds_up_the_lifecycle() -> None:
    """With time_scale the job clock runs faster, so jobs finish in real milliseconds."""
    async with (
        run_emulator(time_scale=10_000.0) as emu,
        aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as http,
    ):
        data = await create(http)
        for _ in range(200):
            row = await get(http, f"/v1/images/{data['id']}")
            if row["status"] == "succeeded":
                break
        assert row["status"] == "succeeded"


async def test_durations_grow_with_pixels_steps_and_count(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A small image finishes before a 4k, four-image, 100-step one."""
    small = await create(http, width=1024, height=1024, steps=10, seed=1)
    big = await create(http, size="4k_1_1", count=4, steps=100, seed=1)
    emu.advance(10)
    assert (await get(http, f"/v1/images/{small['id']}"))["status"] == "succeeded"
    assert (await get(http, f"/v1/images/{big['id']}"))["status"] == "processing"
    emu.advance(LONG)
    assert (await get(http, f"/v1/images/{big['id']}"))["status"] == "succeeded"


async def test_get_unknown_and_foreign_ids_are_404(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Unknown ids and another team's ids both answer 404 resource_not_found."""
    data = await create(http)
    other = emu.add_team()
    async with http.get(f"/v1/images/{data['id']}", headers={"X-Api-Key": other.api_key}) as r:
        assert r.status == 404
        assert error_of(await r.json())[:2] == ("not_found", "resource_not_found")
    async with http.get("/v1/images/img_01NOPE") as r:
        assert r.status == 404


@pytest.mark.parametrize(("preset", "size"), sorted(SIZE_PRESETS.items()))
async def test_size_presets(
    http: aiohttp.ClientSession, preset: str, size: tuple[int, int]
) -> None:
    """Every <tier>_<w>_<h> preset maps to its pixel size (long side 2048/4096, multiple of 32)."""
    data = await create(http, size=preset)
    assert (data["width"], data["height"]) == size
    assert data["size_preset"] == preset
    assert max(size) == (2048 if preset.startswith("2k") else 4096)
    assert all(side % 32 == 0 for side in size)
    w, h = (int(x) for x in preset.split("_")[1:])
    assert abs(size[0] / size[1] - w / h) < 0.05


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1024, 1024, (1024, 1024)),
        (1050, 2001, (1056, 2016)),
        (4090, 1039, (4096, 1024)),
        (1040, 1040, (1056, 1056)),
    ],
)
async def test_custom_sizes_snap_to_32(
    http: aiohttp.ClientSession, width: int, height: int, expected: tuple[int, int]
) -> None:
    """width+height are snapped to the nearest multiple of 32, and size_preset is null."""
    data = await create(http, width=width, height=height)
    assert (data["width"], data["height"]) == expected
    assert data["size_preset"] is None


async def test_seed_random_when_omitted(http: aiohttp.ClientSession) -> None:
    """Without a seed the emulator picks a random non-negative one and reports it."""
    seeds = {(await create(http))["seed"] for _ in range(3)}
    assert all(isinstance(seed, int) and seed >= 0 for seed in seeds)
    assert len(seeds) > 1


async def test_lora_stack_and_defaults(http: aiohttp.ClientSession) -> None:
    """loras[] resolves every entry by id or slug; no style at all gives loras null."""
    data = await create(
        http,
        loras=[{"lora": GOLDEN_HOUR, "weight": 0.5}, {"lora": "watercolor-dreams", "weight": 2}],
    )
    assert [lora["name"] for lora in data["loras"]] == [
        "Golden Hour Photography",
        "Watercolor Dreams",
    ]
    assert (await create(http))["loras"] is None


async def test_enhance_and_count_price(http: aiohttp.ClientSession) -> None:
    """count multiplies the base price and enhance_prompt adds an equal enhance line."""
    data = await create(http, count=3, enhance_prompt=True)
    assert data["cost"] == {
        "amount": 6,
        "currency": "credit",
        "breakdown": {"base": 3, "enhance": 3},
    }


async def test_reference_urls_make_an_i2i_generation(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """https:// references and the team's file_ ids are accepted; inference_type is i2i."""
    form = aiohttp.FormData()
    form.add_field("file", png(1024, 1024, "ref", 1), filename="r.png", content_type="image/png")
    form.add_field("purpose", "reference")
    async with http.post("/v1/files", data=form) as r:
        assert r.status in (200, 201), await r.text()
        file_id = (await r.json())["id"]
    refs = [file_id, "https://example.com/ref.jpg"]
    data = await create(http, reference_image_urls=refs, denoise_strength=0.3)
    assert (data["inference_type"], data["reference_image_urls"]) == ("i2i", refs)
    assert data["denoise_strength"] == 0.3
    other = emu.add_team()
    status, body, _ = await post(
        http,
        "/v1/images",
        {"prompt": "x", "reference_image_urls": [file_id]},
        **{"X-Api-Key": other.api_key},
    )
    assert (status, body["error"]["param"]) == (404, "reference_image_urls[0]")


async def test_character_must_be_ready(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A synthesizing character is 400 character_not_ready; once ready it makes an i2i job."""
    status, character, _ = await post(
        http, "/v1/characters", {"name": "Aurora", "generate": True, "attributes": {"age": 28}}
    )
    assert status == 201, character
    body = {"prompt": "portrait", "character_id": character["id"]}
    status, data, _ = await post(http, "/v1/images", body)
    assert (status, *error_of(data)) == (
        400,
        "invalid_request",
        "character_not_ready",
        "character_id",
    )
    emu.advance(LONG)
    assert (await get(http, f"/v1/characters/{character['id']}"))["status"] == "ready"
    data = await create(http, **body)
    assert (data["character_id"], data["inference_type"]) == (character["id"], "i2i")
    status, data, _ = await post(http, "/v1/images", {**body, "character_id": "char_01NOPE"})
    assert (status, data["error"]["code"]) == (404, "resource_not_found")


# -- validation ------------------------------------------------------------------------------

IMAGE_ERRORS: list[tuple[dict[str, Any], int, str, str | None]] = [
    ({}, 400, "missing_field", "prompt"),
    ({"prompt": None}, 400, "missing_field", "prompt"),
    ({"prompt": ""}, 400, "value_out_of_range", "prompt"),
    ({"prompt": "   \n"}, 400, "value_out_of_range", "prompt"),
    ({"prompt": "x" * 4001}, 400, "value_out_of_range", "prompt"),
    ({"prompt": 5}, 400, "invalid_format", "prompt"),
    ({"negative_prompt": ""}, 400, "value_out_of_range", "negative_prompt"),
    ({"negative_prompt": "n" * 4001}, 400, "value_out_of_range", "negative_prompt"),
    ({"steps": 0}, 400, "value_out_of_range", "steps"),
    ({"steps": 101}, 400, "value_out_of_range", "steps"),
    ({"steps": 2.5}, 400, "invalid_format", "steps"),
    ({"guidance_scale": 0.05}, 400, "value_out_of_range", "guidance_scale"),
    ({"guidance_scale": 30.5}, 400, "value_out_of_range", "guidance_scale"),
    ({"guidance_scale": "7"}, 400, "invalid_format", "guidance_scale"),
    ({"cfg_rescale": 1.5}, 400, "value_out_of_range", "cfg_rescale"),
    ({"denoise_strength": -0.1}, 400, "value_out_of_range", "denoise_strength"),
    ({"seed": -1}, 400, "value_out_of_range", "seed"),
    ({"seed": 2**32}, 400, "value_out_of_range", "seed"),
    ({"count": 0}, 400, "value_out_of_range", "count"),
    ({"count": 5}, 400, "value_out_of_range", "count"),
    ({"enhance_prompt": "yes"}, 400, "invalid_format", "enhance_prompt"),
    ({"size": "square"}, 400, "invalid_format", "size"),
    ({"size": "8k_1_1"}, 400, "invalid_format", "size"),
    ({"size": "2k_1_1", "width": 2048}, 400, "parameter_invalid_combination", "size"),
    (
        {"size": "2k_1_1", "width": 2048, "height": 2048},
        400,
        "parameter_invalid_combination",
        "size",
    ),
    ({"width": 2048}, 400, "missing_field", "height"),
    ({"height": 2048}, 400, "missing_field", "width"),
    ({"width": 1000, "height": 2048}, 400, "value_out_of_range", "width"),
    ({"width": 2048, "height": 4097}, 400, "value_out_of_range", "height"),
    ({"width": "2048", "height": 2048}, 400, "invalid_format", "width"),
    (
        {"lora_id": GOLDEN_HOUR, "loras": [{"lora": GOLDEN_HOUR}]},
        400,
        "parameter_invalid_combination",
        "loras",
    ),
    ({"lora_id": "no-such-style"}, 404, "resource_not_found", "lora_id"),
    ({"lora_id": "seedance-1-pro"}, 400, "unsupported_lora_for_mode", "lora_id"),
    ({"loras": []}, 400, "value_out_of_range", "loras"),
    ({"loras": [{"lora": GOLDEN_HOUR}] * 5}, 400, "value_out_of_range", "loras"),
    ({"loras": "golden"}, 400, "invalid_format", "loras"),
    ({"loras": ["golden-hour-photography"]}, 400, "invalid_format", "loras[0]"),
    ({"loras": [{"weight": 1}]}, 400, "missing_field", "loras[0].lora"),
    (
        {"loras": [{"lora": GOLDEN_HOUR, "weight": 2.5}]},
        400,
        "value_out_of_range",
        "loras[0].weight",
    ),
    (
        {"loras": [{"lora": GOLDEN_HOUR, "weight": -0.1}]},
        400,
        "value_out_of_range",
        "loras[0].weight",
    ),
    ({"loras": [{"lora": GOLDEN_HOUR, "weight": "1"}]}, 400, "invalid_format", "loras[0].weight"),
    ({"loras": [{"lora": GOLDEN_HOUR, "scale": 1}]}, 400, "invalid_format", "loras[0].scale"),
    (
        {"loras": [{"lora": GOLDEN_HOUR}, {"lora": "golden-hour-photography"}]},
        400,
        "invalid_format",
        "loras[1].lora",
    ),
    (
        {"loras": [{"lora": GOLDEN_HOUR}, {"lora": "nope"}]},
        404,
        "resource_not_found",
        "loras[1].lora",
    ),
    ({"loras": [{"lora": "seedance-1-lite"}]}, 400, "unsupported_lora_for_mode", "loras[0].lora"),
    ({"reference_image_urls": []}, 400, "value_out_of_range", "reference_image_urls"),
    (
        {"reference_image_urls": ["https://e.com/a.jpg"] * 7},
        400,
        "value_out_of_range",
        "reference_image_urls",
    ),
    (
        {"reference_image_urls": ["http://e.com/a.jpg"]},
        400,
        "invalid_format",
        "reference_image_urls[0]",
    ),
    (
        {"reference_image_urls": ["https://e.com/" + "a" * 2048]},
        400,
        "value_out_of_range",
        "reference_image_urls[0]",
    ),
    ({"reference_image_urls": [7]}, 400, "invalid_format", "reference_image_urls[0]"),
    (
        {"reference_image_urls": ["file_01NOPE"]},
        404,
        "resource_not_found",
        "reference_image_urls[0]",
    ),
    (
        {"character_id": "char_01X", "reference_image_urls": ["https://e.com/a.jpg"]},
        400,
        "mutually_exclusive_input",
        "reference_image_urls",
    ),
    ({"character_id": "char_01NOPE"}, 404, "resource_not_found", "character_id"),
    ({"webhook_url": "ftp://example.com/hook"}, 400, "invalid_format", "webhook_url"),
    ({"webhook_url": "https://e.com/" + "a" * 2048}, 400, "value_out_of_range", "webhook_url"),
    ({"colour": "red"}, 400, "invalid_format", "colour"),
    ({"prompt": f"a {BLOCKED.upper()} cat"}, 400, "prompt_blocked", "prompt"),
]


@pytest.mark.parametrize("path", ["/v1/images", "/v1/images/estimate"])
@pytest.mark.parametrize(("body", "status", "code", "param"), IMAGE_ERRORS)
async def test_image_validation(
    emu: Emulator,
    http: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
    param: str | None,
) -> None:
    """Create and estimate refuse each bad image body with the documented status, code and param."""
    if "prompt" not in body and param != "prompt":
        body = {"prompt": "a cat", **body}
    got_status, data, _ = await post(http, path, body)
    assert (got_status, data["error"]["code"], data["error"]["param"]) == (status, code, param)
    assert data["error"]["type"] == ("not_found" if status == 404 else "invalid_request")
    assert emu.generations() == []


VIDEO_ERRORS: list[tuple[dict[str, Any], int, str, str | None]] = [
    ({"video_lora_id": None}, 400, "missing_field", "video_lora_id"),
    ({"video_lora_id": "nope"}, 404, "resource_not_found", "video_lora_id"),
    ({"video_lora_id": GOLDEN_HOUR}, 400, "unsupported_lora_for_mode", "video_lora_id"),
    ({"prompt": " "}, 400, "value_out_of_range", "prompt"),
    ({"prompt": "x" * 4001}, 400, "value_out_of_range", "prompt"),
    ({"resolution": "4k"}, 400, "invalid_format", "resolution"),
    ({"ratio": "2:1"}, 400, "invalid_format", "ratio"),
    ({"duration": 1}, 400, "value_out_of_range", "duration"),
    ({"duration": 13}, 400, "value_out_of_range", "duration"),
    ({"seed": -2}, 400, "value_out_of_range", "seed"),
    ({"camera_fixed": 1}, 400, "invalid_format", "camera_fixed"),
    ({"watermark": "no"}, 400, "invalid_format", "watermark"),
    ({"first_frame_url": "http://e.com/a.jpg"}, 400, "invalid_format", "first_frame_url"),
    (
        {"first_frame_url": "https://e.com/" + "a" * 2048},
        400,
        "value_out_of_range",
        "first_frame_url",
    ),
    ({"first_frame_url": "file_01NOPE"}, 404, "resource_not_found", "first_frame_url"),
    ({"last_frame_url": "https://e.com/b.jpg"}, 400, "missing_field", "first_frame_url"),
    (
        {"first_frame_url": "https://e.com/a.jpg", "last_frame_url": "b"},
        400,
        "invalid_format",
        "last_frame_url",
    ),
    ({"webhook_url": "http://example.com/hook"}, 400, "invalid_format", "webhook_url"),
    ({"size": "2k_1_1"}, 400, "invalid_format", "size"),
    ({"prompt": f"{BLOCKED} at sea"}, 400, "prompt_blocked", "prompt"),
]


@pytest.mark.parametrize("path", ["/v1/videos", "/v1/videos/estimate"])
@pytest.mark.parametrize(("body", "status", "code", "param"), VIDEO_ERRORS)
async def test_video_validation(
    emu: Emulator,
    http: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
    param: str | None,
) -> None:
    """Create and estimate refuse each bad video body with the documented status, code and param."""
    body = {"video_lora_id": "seedance-1-pro", **body}
    if body["video_lora_id"] is None:
        del body["video_lora_id"]
    got_status, data, _ = await post(http, path, body)
    assert (got_status, data["error"]["code"], data["error"]["param"]) == (status, code, param)
    assert emu.generations() == []


async def test_blocked_prompt_creates_nothing_and_holds_nothing(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A blocked prompt leaves no row, no hold and no ledger row behind (A19)."""
    before = await ledger(http)
    status, _, _ = await post(http, "/v1/images", {"prompt": f"x {BLOCKED}"})
    assert status == 400
    assert emu.generations() == []
    assert await ledger(http) == before


async def test_blocked_terms_setting() -> None:
    """The blocked term list is an emulator setting."""
    async with (
        run_emulator(blocked_terms=("kraken",)) as emu,
        aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as http,
    ):
        status, data, _ = await post(http, "/v1/images", {"prompt": "The Kraken wakes"})
        assert (status, data["error"]["code"]) == (400, "prompt_blocked")
        await create(http, prompt=f"a {BLOCKED}")


# -- estimate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "amount", "base", "enhance"),
    [
        ("/v1/images/estimate", {"prompt": "a"}, 1, 1, 0),
        ("/v1/images/estimate", {"prompt": "a", "enhance_prompt": True}, 2, 1, 1),
        ("/v1/images/estimate", {"prompt": "a", "count": 4, "size": "4k_16_9"}, 4, 4, 0),
        ("/v1/videos/estimate", {"video_lora_id": "seedance-1-lite"}, 2.5, 2.5, 0),
        (
            "/v1/videos/estimate",
            {"video_lora_id": "seedance-1-pro", "resolution": "720p", "duration": 4},
            3,
            3,
            0,
        ),
        ("/v1/videos/estimate", {"video_lora_id": "seedance-1-pro"}, 6.25, 6.25, 0),
        (
            "/v1/videos/estimate",
            {"video_lora_id": "seedance-1-lite", "duration": 12, "enhance_prompt": True},
            12,
            6,
            6,
        ),
    ],
)
async def test_estimate_prices(
    emu: Emulator,
    http: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
    amount: float,
    base: float,
    enhance: float,
) -> None:
    """Estimates follow the rate card and have no side effects."""
    before = await balance(http)
    status, data, _ = await post(http, path, body)
    assert status == 200
    assert data == {
        "object": "estimate",
        "estimated_cost": {"amount": amount, "breakdown": {"base": base, "enhance": enhance}},
        "currency": "credit",
    }
    assert await balance(http) == before
    assert emu.generations() == []


async def test_estimate_ignores_balance(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """An estimate never answers 402, even with an empty balance."""
    emu.set_credits(emu.team_id, 0)
    status, _, _ = await post(http, "/v1/images/estimate", {"prompt": "a"})
    assert status == 200


# -- money ----------------------------------------------------------------------------------


async def test_money_flow_hold_commit_release(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A hold on create, a charge on success, a release on failure; the books always balance."""
    start = await assert_books_balance(emu, http)
    ok = await create(http, count=2)
    doomed = await create(http, enhance_prompt=True)
    money = await assert_books_balance(emu, http)
    assert money["held_credits"] == 4
    assert money["credits"] == start["credits"]
    emu.force_outcome(doomed["id"], "failed", "provider exploded")
    money = await assert_books_balance(emu, http)
    assert money["held_credits"] == 2
    failed = await get(http, f"/v1/images/{doomed['id']}")
    assert (failed["status"], failed["error_message"]) == ("failed", "provider exploded")
    assert failed["cost"] == {
        "amount": 0,
        "currency": "credit",
        "breakdown": {"base": 0, "enhance": 0},
    }
    assert failed["output_urls"] == []
    emu.advance(LONG)
    money = await assert_books_balance(emu, http)
    assert (money["held_credits"], money["credits"]) == (0, start["credits"] - 2)
    assert (await get(http, f"/v1/images/{ok['id']}"))["cost"]["amount"] == 2
    mine = [row for row in await ledger(http) if row["generation_id"] == ok["id"]]
    assert sorted(row["type"] for row in mine) == ["charge", "hold", "release"]
    assert {row["hold_id"] for row in mine} == {mine[0]["hold_id"]}


async def test_balance_too_low_is_402_and_creates_nothing(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Available credits below the price: 402 balance_too_low, no row, no hold."""
    emu.set_credits(emu.team_id, 1.5)
    await create(http)
    status, data, _ = await post(http, "/v1/images", {"prompt": "a", "count": 2})
    assert (status, *error_of(data)) == (402, "invalid_request", "balance_too_low", None)
    assert len(emu.generations()) == 1
    money = await assert_books_balance(emu, http)
    assert (money["held_credits"], money["available_credits"]) == (1, 0.5)


async def test_exempt_team_is_never_blocked(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A team in billing_mode exempt creates with no balance and no ledger rows."""
    emu.set_credits(emu.team_id, 0)
    emu.set_billing_mode(emu.team_id, "exempt")
    before = await ledger(http)
    data = await create(http, count=4)
    emu.advance(LONG)
    assert (await get(http, f"/v1/images/{data['id']}"))["status"] == "succeeded"
    assert await ledger(http) == before


async def test_concurrency_limit() -> None:
    """With a cap, one more in-flight job is a 429 concurrency_limit_exceeded with Retry-After."""
    async with (
        run_emulator(concurrency_limit=2) as capped,
        aiohttp.ClientSession(capped.base_url, headers={"X-Api-Key": capped.api_key}) as http,
    ):
        first = await create(http)
        await create(http, "/v1/videos", video_lora_id="seedance-1-lite")
        status, data, headers = await post(http, "/v1/images", {"prompt": "a"})
        assert (status, *error_of(data)) == (
            429,
            "rate_limit",
            "concurrency_limit_exceeded",
            None,
        )
        assert int(headers["Retry-After"]) >= 1
        assert "X-RateLimit-Remaining" in headers
        money = await assert_books_balance(capped, http)
        assert money["held_credits"] == 3.5
        other = capped.add_team()
        status, _, _ = await post(
            http, "/v1/images", {"prompt": "a"}, **{"X-Api-Key": other.api_key}
        )
        assert status == 201
        async with http.post(f"/v1/images/{first['id']}/cancel") as r:
            assert r.status == 200
        await create(http)


# -- cancel ---------------------------------------------------------------------------------


async def test_cancel_rules(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Cancel releases the hold, repeats as a no-op, and refuses other terminal states."""
    data = await create(http)
    emu.advance(1.5)
    async with http.post(f"/v1/images/{data['id']}/cancel") as r:
        assert r.status == 200
        cancelled = await r.json()
    assert emu.requests[-1].bucket == "images_post"
    assert cancelled["status"] == "cancelled"
    assert cancelled["cost"]["amount"] == 0
    assert cancelled["error_message"] is None
    assert cancelled["completed_at"] is not None
    assert (await assert_books_balance(emu, http))["held_credits"] == 0
    async with http.post(f"/v1/images/{data['id']}/cancel") as r:
        assert (r.status, await r.json()) == (200, cancelled)
    emu.advance(LONG)
    assert await get(http, f"/v1/images/{data['id']}") == cancelled
    done = await create(http)
    emu.advance(LONG)
    async with http.post(f"/v1/images/{done['id']}/cancel") as r:
        assert r.status == 400
        assert error_of(await r.json())[:2] == ("invalid_request", "generation_not_cancellable")
    async with http.post("/v1/images/img_01NOPE/cancel") as r:
        assert r.status == 404
    other = emu.add_team()
    fresh = await create(http)
    async with http.post(
        f"/v1/images/{fresh['id']}/cancel", headers={"X-Api-Key": other.api_key}
    ) as r:
        assert r.status == 404


async def test_cancel_a_video(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """POST /v1/images/{vid_id}/cancel cancels a video."""
    data = await create(http, "/v1/videos", video_lora_id="seedance-1-pro")
    async with http.post(f"/v1/images/{data['id']}/cancel") as r:
        assert (r.status, (await r.json())["status"]) == (200, "cancelled")


# -- forced outcomes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [("failed", None), ("moderation_rejected", None), ("expired", "stuck in queue")],
)
async def test_force_next_outcome(
    emu: Emulator, http: aiohttp.ClientSession, status: str, message: str | None
) -> None:
    """The next generation ends in the forced status at its natural time, with a message."""
    emu.force_next_outcome(status, message)
    data = await create(http)
    normal = await create(http)
    emu.advance(LONG)
    row = await get(http, f"/v1/images/{data['id']}")
    assert row["status"] == status
    assert row["error_message"] == (message or row["error_message"])
    assert row["error_message"]
    assert row["cost"]["amount"] == 0
    assert (await get(http, f"/v1/images/{normal['id']}"))["status"] == "succeeded"
    assert (await assert_books_balance(emu, http))["held_credits"] == 0


async def test_terminal_states_never_change(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """force_outcome refuses a terminal generation, unknown ids and unknown statuses."""
    data = await create(http)
    emu.force_outcome(data["id"], "succeeded")
    row = await get(http, f"/v1/images/{data['id']}")
    assert row["status"] == "succeeded"
    with pytest.raises(ValueError, match="terminal"):
        emu.force_outcome(data["id"], "failed")
    with pytest.raises(KeyError):
        emu.force_outcome("img_01NOPE", "failed")
    with pytest.raises(ValueError, match="cannot force"):
        emu.force_next_outcome("exploded")
    emu.advance(LONG)
    assert await get(http, f"/v1/images/{data['id']}") == row


async def test_stuck_job_stays_processing_until_cancelled(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A job forced to processing never finishes; cancelling it releases the hold (A18)."""
    emu.force_next_outcome("processing")
    data = await create(http)
    emu.advance(10 * LONG)
    assert (await get(http, f"/v1/images/{data['id']}"))["status"] == "processing"
    assert (await balance(http))["held_credits"] == 1
    async with http.post(f"/v1/images/{data['id']}/cancel") as r:
        assert (await r.json())["status"] == "cancelled"
    other = await create(http)
    emu.force_outcome(other["id"], "processing")
    emu.advance(LONG)
    assert (await get(http, f"/v1/images/{other['id']}"))["status"] == "processing"
    emu.force_outcome(other["id"], "failed")
    assert (await assert_books_balance(emu, http))["held_credits"] == 0


# -- videos -----------------------------------------------------------------------------------


async def test_video_create_defaults_and_lifecycle(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A video takes the LoRA's defaults, is polled at /v1/images/{vid} and gets a video URL."""
    status, data, _ = await post(http, "/v1/videos", {"video_lora_id": "seedance-1-pro"})
    assert status == 201
    assert set(data) == GENERATION_FIELDS
    assert data["id"].startswith("vid_")
    assert (data["media_type"], data["inference_type"], data["prompt"]) == ("video", "t2v", None)
    assert (data["video_resolution"], data["video_ratio"], data["video_duration"]) == (
        "1080p",
        "16:9",
        5,
    )
    assert (data["width"], data["height"]) == (1920, 1080)
    assert data["video_camera_fixed"] is False
    assert data["image_count"] is None
    assert data["loras"][0]["name"] == "Seedance 1.0 Pro"
    assert data["cost"]["amount"] == 6.25
    emu.advance(LONG)
    row = await get(http, f"/v1/images/{data['id']}")
    assert row["status"] == "succeeded"
    assert row["output_video_url"].startswith(
        f"{emu.base_url}/v1/videos/{data['id']}/output?token="
    )
    assert row["output_urls"] == []


@pytest.mark.parametrize(
    ("resolution", "ratio", "size"),
    [("480p", "9:16", (480, 848)), ("720p", "1:1", (720, 720)), ("720p", "21:9", (1680, 720))],
)
async def test_video_frame_sizes(
    http: aiohttp.ClientSession, resolution: str, ratio: str, size: tuple[int, int]
) -> None:
    """Video width/height follow resolution (short side) and ratio."""
    data = await create(
        http, "/v1/videos", video_lora_id="seedance-1-lite", resolution=resolution, ratio=ratio
    )
    assert (data["width"], data["height"]) == size


async def test_video_i2v_seed_and_frames(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A first frame makes i2v; seed -1 means random; camera_fixed is echoed."""
    data = await create(
        http,
        "/v1/videos",
        video_lora_id="seedance-1-lite",
        first_frame_url="https://example.com/first.jpg",
        last_frame_url="https://example.com/last.jpg",
        seed=-1,
        camera_fixed=True,
        watermark=True,
        duration=2,
    )
    assert data["inference_type"] == "i2v"
    assert data["seed"] >= 0
    assert data["video_camera_fixed"] is True
    assert data["video_duration"] == 2
    assert (await create(http, "/v1/videos", video_lora_id="seedance-1-lite", seed=9))["seed"] == 9


# -- idempotency ------------------------------------------------------------------------------


async def test_idempotent_create_replays_and_holds_once(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Same key and body: same generation, Aurous-Idempotent-Replayed, one hold; new body: 409."""
    body = {"prompt": "a red kite", "count": 2}
    key = {"Idempotency-Key": "k-123"}
    status1, first, headers1 = await post(http, "/v1/images", body, **key)
    status2, second, headers2 = await post(http, "/v1/images", dict(reversed(body.items())), **key)
    assert (status1, status2) == (201, 201)
    assert first == second
    assert "Aurous-Idempotent-Replayed" not in headers1
    assert headers2["Aurous-Idempotent-Replayed"] == "true"
    assert len(emu.generations()) == 1
    holds = [row for row in await ledger(http) if row["type"] == "hold"]
    assert len(holds) == 1
    status3, data, _ = await post(http, "/v1/images", {"prompt": "other"}, **key)
    assert (status3, data["error"]["code"]) == (409, "idempotency_key_in_use")
    status4, video, _ = await post(
        http, "/v1/videos", {"video_lora_id": "seedance-1-lite"}, **{"Idempotency-Key": "v-1"}
    )
    status5, again, headers5 = await post(
        http, "/v1/videos", {"video_lora_id": "seedance-1-lite"}, **{"Idempotency-Key": "v-1"}
    )
    assert (status4, status5, video["id"]) == (201, 201, again["id"])
    assert headers5["Aurous-Idempotent-Replayed"] == "true"


async def test_validation_error_is_not_cached_for_the_key(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A 4xx first attempt frees the key: fixing the body and retrying with it works."""
    key = {"Idempotency-Key": "retry-me"}
    status, _, _ = await post(http, "/v1/images", {"prompt": "a", "steps": 500}, **key)
    assert status == 400
    status, _, _ = await post(http, "/v1/images", {"prompt": "a", "steps": 50}, **key)
    assert status == 201


# -- list -------------------------------------------------------------------------------------


async def test_list_newest_first_with_cursors(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """GET /v1/images lists images and videos newest first, paged both ways by cursor."""
    ids = []
    for i in range(5):
        if i == 2:
            ids.append((await create(http, "/v1/videos", video_lora_id="seedance-1-lite"))["id"])
        else:
            ids.append((await create(http, prompt=f"p{i}"))["id"])
    newest = list(reversed(ids))
    other = emu.add_team()
    async with aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": other.api_key}) as o:
        await create(o)
    page = await get(http, "/v1/images?limit=2")
    assert page["object"] == "list"
    assert [row["id"] for row in page["data"]] == newest[:2]
    assert (page["has_more"], page["next_cursor"]) == (True, newest[1])
    page = await get(http, f"/v1/images?limit=2&starting_after={page['next_cursor']}")
    assert [row["id"] for row in page["data"]] == newest[2:4]
    assert page["data"][0]["media_type"] == "video"
    page = await get(http, f"/v1/images?limit=2&starting_after={page['next_cursor']}")
    assert ([row["id"] for row in page["data"]], page["has_more"], page["next_cursor"]) == (
        newest[4:],
        False,
        None,
    )
    page = await get(http, f"/v1/images?limit=2&ending_before={newest[4]}")
    assert [row["id"] for row in page["data"]] == newest[2:4]
    assert page["has_more"] is True
    page = await get(http, "/v1/images")
    assert [row["id"] for row in page["data"]] == newest
    assert page["has_more"] is False


@pytest.mark.parametrize(
    ("query", "code", "param"),
    [
        ("limit=0", "value_out_of_range", "limit"),
        ("limit=101", "value_out_of_range", "limit"),
        ("limit=ten", "invalid_format", "limit"),
        ("starting_after=img_01NOPE", "invalid_format", "starting_after"),
        ("ending_before=img_01NOPE", "invalid_format", "ending_before"),
        ("starting_after=a&ending_before=b", "parameter_invalid_combination", "ending_before"),
    ],
)
async def test_list_rejects_bad_queries(
    http: aiohttp.ClientSession, query: str, code: str, param: str
) -> None:
    """Bad limits and unknown or conflicting cursors are 400s naming the parameter."""
    async with http.get(f"/v1/images?{query}") as r:
        assert r.status == 400
        assert error_of(await r.json())[1:] == (code, param)


async def test_list_cursor_of_another_team_is_unknown(emu: Emulator) -> None:
    """A cursor from another team's list is refused like an unknown one."""
    e = emu
    async with aiohttp.ClientSession(e.base_url) as http:
        other = e.add_team()
        async with http.post(
            "/v1/images", json={"prompt": "x"}, headers={"X-Api-Key": other.api_key}
        ) as r:
            theirs_id = (await r.json())["id"]
        async with http.get(
            f"/v1/images?starting_after={theirs_id}", headers={"X-Api-Key": e.api_key}
        ) as r:
            assert r.status == 400


# -- events -----------------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook receiver that answers 200 and keeps the JSON bodies."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "body": await request.json()})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_webhook_events_and_per_generation_callbacks(
    emu: Emulator,
    http: aiohttp.ClientSession,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    """Terminal states publish image.*/video.* events; expired/moderation_rejected publish none."""
    url, seen = receiver
    status, _, _ = await post(
        http, "/v1/webhook_endpoints", {"url": f"{url}/endpoint", "events": ["*"]}
    )
    assert status in (200, 201)
    ok = await create(http, webhook_url=f"{url}/callback")
    failed = await create(http, webhook_url=f"{url}/callback")
    cancelled = await create(http, webhook_url=f"{url}/callback")
    video = await create(http, "/v1/videos", video_lora_id="seedance-1-lite")
    rejected = await create(http)
    expired = await create(http)
    emu.force_outcome(failed["id"], "failed", "boom")
    async with http.post(f"/v1/images/{cancelled['id']}/cancel"):
        pass
    emu.force_outcome(rejected["id"], "moderation_rejected")
    emu.force_outcome(expired["id"], "expired")
    emu.advance(LONG)
    await emu.state.webhooks.wait_idle()
    events = {
        (hit["body"]["type"], hit["body"]["data"]["id"])
        for hit in seen
        if hit["path"] == "/endpoint"
    }
    assert events >= {
        ("image.completed", ok["id"]),
        ("image.failed", failed["id"]),
        ("image.cancelled", cancelled["id"]),
        ("video.completed", video["id"]),
    }
    ids = {gid for _, gid in events}
    assert rejected["id"] not in ids
    assert expired["id"] not in ids
    completed = next(
        hit["body"]["data"] for hit in seen if hit["body"].get("type") == "image.completed"
    )
    assert completed == await get(http, f"/v1/images/{ok['id']}")
    callbacks = sorted(
        (hit["body"]["event"], hit["body"]["data"]["id"])
        for hit in seen
        if hit["path"] == "/callback"
    )
    assert callbacks == sorted([("image.completed", ok["id"]), ("image.failed", failed["id"])])


# -- server-side controls and shapes ------------------------------------------------------------


async def test_dump_lists_rows_per_team(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """emu.generations() returns rendered rows, oldest first, optionally for one team."""
    first = await create(http)
    other = emu.add_team()
    async with http.post(
        "/v1/images", json={"prompt": "x"}, headers={"X-Api-Key": other.api_key}
    ) as r:
        theirs = await r.json()
    assert [row["id"] for row in emu.generations()] == [first["id"], theirs["id"]]
    assert [row["id"] for row in emu.generations(emu.team_id)] == [first["id"]]


async def test_golden_shapes(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Generation, list, estimate, balance and ledger rows match the contract examples' shapes."""
    golden = fixture("generation.json")
    image = await create(http, negative_prompt="blurry", seed=42)
    video = await create(http, "/v1/videos", video_lora_id="seedance-1-lite", prompt="waves")
    emu.advance(LONG)
    for row in (image, video):
        assert_shape(await get(http, f"/v1/images/{row['id']}"), golden)
    listing = fixture("list_generations.json")
    assert_shape(await get(http, "/v1/images?limit=1"), listing)
    estimate = fixture("estimate.json")
    _, data, _ = await post(http, "/v1/images/estimate", {"prompt": "a", "enhance_prompt": True})
    assert_shape(data, estimate)
    assert_shape(await balance(http), fixture("balance.json"))
    event = fixture("usage_event.json")
    for row in await ledger(http):
        assert_shape(row, event)
