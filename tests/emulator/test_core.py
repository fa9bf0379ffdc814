"""Cross-cutting rules every emulator route follows: auth, versions, ids, buckets, faults."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from _clocks import SteppingClock

from aurous_async.testing import BucketSpec, Emulator, Fault, run_emulator
from aurous_async.testing._app import all_routes

pytestmark = pytest.mark.anyio

REQUEST_ID = re.compile(r"^req_[0-9A-HJKMNP-TV-Z]{26}$")


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator() as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.base_url) as session:
        yield session


def key(secret: str) -> dict[str, str]:
    return {"X-Api-Key": secret}


async def test_request_id_header_matches_error_envelope(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Every response carries a req_<ULID> id, equal to error.request_id on errors."""
    async with http.get("/v1/balance", headers=key(emu.api_key)) as ok:
        assert REQUEST_ID.match(ok.headers["Aurous-Request-Id"])
    async with http.get("/v1/balance") as failed:
        body = await failed.json()
        assert failed.headers["Aurous-Request-Id"] == body["error"]["request_id"]
        assert REQUEST_ID.match(body["error"]["request_id"])


async def test_version_is_echoed_and_unknown_pins_are_refused(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """The applied version is echoed; an unknown or malformed pin is a 400 unknown_version."""
    async with http.get("/v1/pricing", headers=key(emu.api_key)) as default:
        assert default.headers["Aurous-Version"] == "2026-05-15"
        assert (await default.json())["version"] == "2026-05-15"
    pinned = {**key(emu.api_key), "Aurous-Version": "2026-05-15"}
    async with http.get("/v1/pricing", headers=pinned) as ok:
        assert ok.status == 200
    for bad in ("2025-01-01", "yesterday"):
        headers = {**key(emu.api_key), "Aurous-Version": bad}
        async with http.get("/v1/pricing", headers=headers) as refused:
            error = (await refused.json())["error"]
            assert refused.status == 400
            assert (error["type"], error["code"], error["param"]) == (
                "invalid_request",
                "unknown_version",
                "Aurous-Version",
            )
            assert refused.headers["Aurous-Version"] == "2026-05-15"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"X-Api-Key": ""}, "missing_api_key"),
        ({"X-Api-Key": "al_live_" + "0" * 64}, "invalid_api_key"),
        ({"Authorization": "Bearer nope"}, "invalid_api_key"),
        ({"Authorization": "Basic abc"}, "missing_api_key"),
    ],
)
async def test_bad_credentials_get_401_with_their_code(
    http: aiohttp.ClientSession, headers: dict[str, str], code: str
) -> None:
    """Missing and unknown keys are 401 authentication errors with the documented codes."""
    async with http.get("/v1/balance", headers=headers) as response:
        error = (await response.json())["error"]
        assert response.status == 401
        assert (error["type"], error["code"]) == ("authentication", code)
        assert "X-RateLimit-Limit" not in response.headers


async def test_bearer_and_legacy_keys_are_accepted(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Authorization: Bearer is an alias of X-Api-Key, and og_ keys still validate."""
    async with http.get("/v1/team", headers={"Authorization": f"Bearer {emu.api_key}"}) as r:
        assert r.status == 200
    legacy = emu.add_key(emu.team_id, "read", legacy=True)
    assert legacy.startswith("og_")
    async with http.get("/v1/team", headers=key(legacy)) as r:
        assert r.status == 200


async def test_revoked_and_rotated_keys(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A revoked key is 401 revoked_api_key; a rotated key works for 24 h, then is invalid."""
    doomed = emu.add_key(emu.team_id)
    emu.revoke_key(doomed)
    async with http.get("/v1/team", headers=key(doomed)) as r:
        assert (await r.json())["error"]["code"] == "revoked_api_key"
    old = emu.add_key(emu.team_id)
    new = emu.rotate_key(old)
    emu.advance(23 * 3600)
    for secret in (old, new):
        async with http.get("/v1/team", headers=key(secret)) as r:
            assert r.status == 200
    emu.advance(2 * 3600)
    async with http.get("/v1/team", headers=key(old)) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (401, "invalid_api_key")
    async with http.get("/v1/team", headers=key(new)) as r:
        assert r.status == 200


async def test_read_scope_cannot_write(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A read-scoped key gets 403 missing_scope on a POST, with the bucket headers."""
    reader = emu.add_key(emu.team_id, "read")
    async with http.post("/v1/images", json={"prompt": "x"}, headers=key(reader)) as r:
        error = (await r.json())["error"]
        assert r.status == 403
        assert error["code"] == "missing_scope"
        assert r.headers["X-RateLimit-Limit"] == "120"
    async with http.get("/v1/balance", headers=key(reader)) as r:
        assert r.status == 200


async def test_bucket_arithmetic_capacity_refill_and_retry_after() -> None:
    """Limit is the capacity, Remaining counts down, Reset is full-again, Retry-After one token."""
    clock = SteppingClock(1_800_000_000.0)
    buckets = {"get": BucketSpec(3, 60)}  # 3 burst, 1 token per second
    async with (
        run_emulator(rate_clock=clock, buckets=buckets) as emu,
        aiohttp.ClientSession(emu.base_url, headers=key(emu.api_key)) as http,
    ):
        seen = []
        for _ in range(3):
            async with http.get("/v1/balance") as r:
                assert r.status == 200
                seen.append(
                    (
                        int(r.headers["X-RateLimit-Limit"]),
                        int(r.headers["X-RateLimit-Remaining"]),
                        int(r.headers["X-RateLimit-Reset"]),
                    )
                )
                assert "Retry-After" not in r.headers
        now = clock.now
        assert seen == [(3, 2, math.ceil(now + 1)), (3, 1, math.ceil(now + 2)), (3, 0, now + 3)]
        clock.now += 0.25
        async with http.get("/v1/balance") as r:
            assert r.status == 429
            error = (await r.json())["error"]
            assert (error["type"], error["code"]) == ("rate_limit", "too_many_requests")
            assert r.headers["Retry-After"] == "1"
            assert r.headers["X-RateLimit-Remaining"] == "0"
            assert int(r.headers["X-RateLimit-Reset"]) == math.ceil(now + 3)
        clock.now += 0.75
        async with http.get("/v1/balance") as r:
            assert r.status == 200
            assert r.headers["X-RateLimit-Remaining"] == "0"
        clock.now += 10
        async with http.get("/v1/balance") as r:
            assert r.headers["X-RateLimit-Remaining"] == "2"


async def test_buckets_are_per_team_and_shared_by_its_keys() -> None:
    """All keys of a team share a bucket; another team has its own."""
    clock = SteppingClock(1_800_000_000.0)
    async with run_emulator(rate_clock=clock, buckets={"get": BucketSpec(2, 60)}) as emu:
        second_key = emu.add_key(emu.team_id)
        other = emu.add_team()
        async with aiohttp.ClientSession(emu.base_url) as http:
            statuses = []
            for secret in (emu.api_key, second_key, emu.api_key, other.api_key):
                async with http.get("/v1/team", headers=key(secret)) as r:
                    statuses.append(r.status)
        assert statuses == [200, 200, 429, 200]


async def test_long_retry_after_rounds_up(emu: Emulator) -> None:
    """With a slow refill, Retry-After is the whole seconds until one token, rounded up."""
    clock = SteppingClock(1_800_000_000.0)
    async with (
        run_emulator(rate_clock=clock, buckets={"get": BucketSpec(1, 7)}) as emu2,
        aiohttp.ClientSession(emu2.base_url, headers=key(emu2.api_key)) as http,
    ):
        async with http.get("/v1/team") as r:
            assert r.status == 200
        clock.now += 1.0
        async with http.get("/v1/team") as r:
            assert r.status == 429
            assert r.headers["Retry-After"] == str(math.ceil(60 / 7 - 1.0))


async def test_unknown_route_gets_json_envelope(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Unknown paths answer with the error envelope, never an HTML page."""
    async with http.get("/v1/nothing-here", headers=key(emu.api_key)) as r:
        assert r.status == 404
        assert r.content_type == "application/json"
        assert (await r.json())["error"]["code"] == "resource_not_found"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b"a=b", "text/plain")],
)
async def test_malformed_bodies_are_400_not_500(
    emu: Emulator, http: aiohttp.ClientSession, body: bytes, content_type: str
) -> None:
    """Malformed JSON, a non-object or a wrong content type is a 400 invalid_format envelope."""
    headers = {**key(emu.api_key), "Content-Type": content_type}
    async with http.post("/v1/images/estimate", data=body, headers=headers) as r:
        assert r.status == 400
        error = (await r.json())["error"]
        assert (error["type"], error["code"]) == ("invalid_request", "invalid_format")


@pytest.mark.parametrize(
    ("status", "code"), [(500, "internal_error"), (503, "provider_unavailable")]
)
async def test_status_fault(
    emu: Emulator, http: aiohttp.ClientSession, status: int, code: str
) -> None:
    """A status fault answers the 5xx envelope once, then the route works again."""
    emu.inject(Fault("status", match="GET /v1/balance", status=status))
    async with http.get("/v1/balance", headers=key(emu.api_key)) as r:
        error = (await r.json())["error"]
        assert (r.status, error["type"], error["code"]) == (status, "server_error", code)
        assert "X-RateLimit-Remaining" in r.headers
    async with http.get("/v1/balance", headers=key(emu.api_key)) as r:
        assert r.status == 200


async def test_rate_limit_fault_names_its_wait(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A rate_limit fault is a documented 429 with the given Retry-After, three times."""
    emu.inject(Fault("rate_limit", match="/v1/team", times=3, retry_after=7))
    for _ in range(3):
        async with http.get("/v1/team", headers=key(emu.api_key)) as r:
            assert (r.status, r.headers["Retry-After"]) == (429, "7")
            assert r.headers["X-RateLimit-Remaining"] == "0"
    async with http.get("/v1/team", headers=key(emu.api_key)) as r:
        assert r.status == 200


async def test_connection_faults(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Dropped, truncated and malformed responses reach the client as such."""
    headers = key(emu.api_key)
    emu.inject(Fault("drop_before", match="POST /v1/images/estimate"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.post("/v1/images/estimate", json={"prompt": "a"}, headers=headers) as r:
            await r.read()
    emu.inject(Fault("truncated_body", match="GET /v1/pricing"))
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get("/v1/pricing", headers=headers) as r:
            await r.read()
    emu.inject(Fault("malformed_body", match="GET /v1/pricing"))
    async with http.get("/v1/pricing", headers=headers) as r:
        assert r.status == 200
        with pytest.raises(json.JSONDecodeError):
            await r.json()


async def test_delay_fault_stalls_the_response(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A delay fault holds the response past a client's deadline."""
    emu.inject(Fault("delay", match="/v1/team", delay=5.0))
    timeout = aiohttp.ClientTimeout(total=0.2)
    with pytest.raises(asyncio.TimeoutError):  # the built-in TimeoutError from 3.11 on
        async with http.get("/v1/team", headers=key(emu.api_key), timeout=timeout) as r:
            await r.read()


async def test_fault_rejects_unknown_kind() -> None:
    """A typo in a fault kind fails loudly instead of silently injecting nothing."""
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")  # type: ignore[arg-type]


async def test_api_spec_lists_every_route(http: aiohttp.ClientSession) -> None:
    """GET /api-spec.json is an OpenAPI 3 document naming every route the emulator serves."""
    async with http.get("/api-spec.json") as r:
        spec = await r.json()
    assert spec["openapi"].startswith("3.")
    for route in all_routes():
        assert route.method.lower() in spec["paths"][route.path], route.path


async def test_request_log_records_status_bucket_and_team(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """The emulator's request log lets tests count what the server saw."""
    async with http.get("/v1/balance", headers=key(emu.api_key)):
        pass
    record = emu.requests[-1]
    assert (record.method, record.path, record.status, record.bucket, record.team_id) == (
        "GET",
        "/v1/balance",
        200,
        "get",
        emu.team_id,
    )
