"""Test controls of the emulator: request log, seeding, forced outcomes, fault modes, spec."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import aurous_async.testing as testing
from aurous_async.testing import Emulator, Fault, run_emulator

pytestmark = pytest.mark.anyio

Json = dict[str, Any]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator(time_scale=1000.0) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.base_url) as session:
        yield session


def key(emu: Emulator, **extra: str) -> dict[str, str]:
    return {"X-Api-Key": emu.api_key, **extra}


async def call(
    http: aiohttp.ClientSession,
    emu: Emulator,
    method: str,
    path: str,
    body: Json | None = None,
    **headers: str,
) -> tuple[int, Any]:
    async with http.request(method, path, json=body, headers=key(emu, **headers)) as response:
        return response.status, await response.json()


def test_delivery_and_webhook_fault_are_exported() -> None:
    """``Delivery`` and ``WebhookFault`` are public names of the testing package."""
    assert "Delivery" in testing.__all__
    assert "WebhookFault" in testing.__all__


async def test_request_log_names_the_bucket_of_refused_requests(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """429s, 403s and injected 5xx are logged with the bucket they were metered on."""
    emu.inject(Fault("rate_limit", match="POST /v1/images", retry_after=3))
    emu.inject(Fault("status", match="GET /v1/balance", status=502))
    assert (await call(http, emu, "POST", "/v1/images", {"prompt": "x"}))[0] == 429
    assert (await call(http, emu, "GET", "/v1/balance"))[0] == 502
    reader = emu.add_key(emu.team_id, "read")
    async with http.post(
        "/v1/images", json={"prompt": "x"}, headers={"X-Api-Key": reader}
    ) as refused:
        assert refused.status == 403
    logged = [(r.method, r.path, r.status, r.bucket) for r in emu.requests]
    assert logged == [
        ("POST", "/v1/images", 429, "images_post"),
        ("GET", "/v1/balance", 502, "get"),
        ("POST", "/v1/images", 403, "images_post"),
    ]


async def test_idempotency_key_is_per_route_template_and_path_parameters(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """One key on two characters' regenerate is a different request (409), not a replay."""
    ids = []
    for name in ("A", "B"):
        status, created = await call(
            http, emu, "POST", "/v1/characters", {"name": name, "generate": True}
        )
        assert status == 201
        ids.append(created["id"])
    emu.advance(600)
    body = {"pose": "front"}
    path = "/v1/characters/{}/refs/regenerate"
    first = await call(http, emu, "POST", path.format(ids[0]), body, **{"Idempotency-Key": "k1"})
    assert first[0] == 200
    replay = await call(http, emu, "POST", path.format(ids[0]), body, **{"Idempotency-Key": "k1"})
    assert replay == first
    other = await call(http, emu, "POST", path.format(ids[1]), body, **{"Idempotency-Key": "k1"})
    assert (other[0], other[1]["error"]["code"]) == (409, "idempotency_key_in_use")


async def test_force_next_character_outcome(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """The next synthesis ends as forced, with the forced error message."""
    emu.force_next_character_outcome("failed", "provider_timeout")
    _, created = await call(http, emu, "POST", "/v1/characters", {"name": "C", "generate": True})
    emu.advance(600)
    _, done = await call(http, emu, "GET", f"/v1/characters/{created['id']}")
    assert (done["status"], done["error_message"]) == ("failed", "provider_timeout")
    with pytest.raises(ValueError, match="status must be one of"):
        emu.force_next_character_outcome("exploded")


async def test_add_lora_seeds_public_private_and_video_styles(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Seeded styles are listed and resolvable where they should be, and usable on create."""
    public = emu.add_lora("Neon Nights", default_steps=20)
    other = emu.add_team("Other")
    private = emu.add_lora("Team Secret", team_id=other.id)
    video = emu.add_lora("Slow Motion", kind="video", default_duration=8)
    _, listed = await call(http, emu, "GET", "/v1/loras")
    slugs = [item["slug"] for item in listed]
    assert "neon-nights" in slugs
    assert "team-secret" not in slugs
    assert (await call(http, emu, "GET", f"/v1/loras/{public}"))[1]["default_steps"] == 20
    assert (await call(http, emu, "GET", f"/v1/loras/{private}"))[0] == 404
    async with http.get(f"/v1/loras/{private}", headers={"X-Api-Key": other.api_key}) as mine:
        assert mine.status == 200
    _, clip = await call(http, emu, "GET", "/v1/video_loras/slow-motion")
    assert (clip["id"], clip["default_duration"]) == (video, 8)
    status, created = await call(
        http, emu, "POST", "/v1/images", {"prompt": "p", "lora_id": public}
    )
    assert status == 201
    assert created["loras"] == [{"id": public, "name": "Neon Nights"}]
    with pytest.raises(ValueError, match="exists already"):
        emu.add_lora("Neon Nights")


async def test_hang_answers_nothing_until_the_client_leaves(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A hung request never answers; the server lets go when the client disconnects."""
    emu.inject(Fault("hang", match="GET /v1/team"))
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(
            "/v1/team", headers=key(emu), timeout=aiohttp.ClientTimeout(total=0.3)
        ) as response:
            await response.read()
    assert (await call(http, emu, "GET", "/v1/team"))[0] == 200


async def test_hang_after_commit_processes_then_never_answers(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """The create is committed and cached for replay although its answer never comes."""
    emu.inject(Fault("hang_after_commit", match="POST /v1/images"))
    headers = key(emu, **{"Idempotency-Key": "hung-1"})
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            "/v1/images",
            json={"prompt": "p"},
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=0.3),
        ) as response:
            await response.read()
    assert len(emu.generations()) == 1
    async with http.post("/v1/images", json={"prompt": "p"}, headers=headers) as replay:
        assert replay.headers["Aurous-Idempotent-Replayed"] == "true"
        assert (await replay.json())["id"] == emu.generations()[0]["id"]


async def test_hung_request_does_not_hold_up_shutdown() -> None:
    """Leaving the emulator releases a request that hangs with no deadline."""
    async with run_emulator() as emulator, aiohttp.ClientSession(emulator.base_url) as session:
        emulator.inject(Fault("hang"))
        pending = asyncio.ensure_future(session.get("/v1/team", headers=key(emulator)))
        await asyncio.sleep(0.1)
        assert not pending.done()
    with pytest.raises(aiohttp.ClientError):
        await pending


async def test_spec_describes_request_bodies_and_parameters(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """The OpenAPI document gives files a multipart body and list routes their queries."""
    async with http.get("/api-spec.json") as response:
        spec = json.loads(await response.read())
    files = spec["paths"]["/v1/files"]["post"]["requestBody"]
    form = files["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file", "purpose"]
    assert form["properties"]["file"]["format"] == "binary"
    images = spec["paths"]["/v1/images"]["post"]["requestBody"]["content"]["application/json"]
    assert images["schema"]["required"] == ["prompt"]
    assert images["schema"]["additionalProperties"] is False
    listing = spec["paths"]["/v1/images"]["get"]["parameters"]
    assert {"limit", "starting_after", "ending_before"} <= {p.get("name") for p in listing}
    output = spec["paths"]["/v1/images/{id}/output/{n}"]["get"]["parameters"]
    assert {p["name"]: p["schema"]["type"] for p in output if p.get("in") == "path"} == {
        "id": "string",
        "n": "integer",
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method in ("post", "patch", "put"):
                assert operation["requestBody"]["content"], (method, path)
