"""Emulator GET /v1/usage: time buckets aggregated from the generation rows (§9)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aurous_async.testing import Emulator, run_emulator

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent.parent / "fixtures"
#: 2026-05-07 10:00 UTC, a Thursday.
START = datetime(2026, 5, 7, 10, tzinfo=timezone.utc).timestamp()
DAY = 86400.0
METRICS = {
    "request_count",
    "successful_count",
    "failed_count",
    "cancelled_count",
    "credits_used",
    "duration_ms_p50",
    "duration_ms_p95",
    "image_count",
    "video_seconds",
    "total_input_tokens",
    "total_output_tokens",
}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator(start_time=START) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as s:
        yield s


async def usage(http: aiohttp.ClientSession, **params: str) -> tuple[int, Any]:
    params.setdefault("start_time", "2026-05-07T00:00:00Z")
    async with http.get("/v1/usage", params=params) as r:
        return r.status, await r.json()


async def seed_traffic(emu: Emulator, http: aiohttp.ClientSession) -> dict[str, str]:
    """Two images (one succeeds with count 2, one fails), one video, one cancelled image."""
    ids: dict[str, str] = {}
    for name, path, body in [
        ("ok", "/v1/images", {"prompt": "a", "count": 2, "lora_id": "watercolor-dreams"}),
        ("failed", "/v1/images", {"prompt": "b"}),
        ("video", "/v1/videos", {"video_lora_id": "seedance-1-lite", "duration": 4}),
        ("cancelled", "/v1/images", {"prompt": "c"}),
    ]:
        async with http.post(path, json=body) as r:
            assert r.status == 201
            ids[name] = (await r.json())["id"]
    emu.force_outcome(ids["failed"], "failed")
    async with http.post(f"/v1/images/{ids['cancelled']}/cancel") as r:
        assert r.status == 200
    emu.advance(600)
    return ids


async def test_buckets_aggregate_the_generation_rows(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """One daily bucket carries request, outcome, credit, image and video-second totals."""
    await seed_traffic(emu, http)
    status, page = await usage(http)
    assert status == 200
    assert (page["object"], page["has_more"], page["next_page"]) == ("list", False, None)
    [bucket] = page["data"]
    assert bucket["object"] == "usage.bucket"
    assert (bucket["bucket_start"], bucket["bucket_end"]) == (
        "2026-05-07T00:00:00Z",
        "2026-05-08T00:00:00Z",
    )
    [group] = bucket["groups"]
    assert group["key"] == {}
    metrics = group["metrics"]
    assert set(metrics) == METRICS
    assert {k: metrics[k] for k in METRICS - {"duration_ms_p50", "duration_ms_p95"}} == {
        "request_count": 4,
        "successful_count": 2,
        "failed_count": 1,
        "cancelled_count": 1,
        "credits_used": 4,
        "image_count": 2,
        "video_seconds": 4,
        "total_input_tokens": 0,
        "total_output_tokens": 0,
    }
    assert 0 <= metrics["duration_ms_p50"] <= metrics["duration_ms_p95"]


async def test_group_by_status_and_type(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """group_by[] splits a bucket by status (usage vocabulary) and type."""
    await seed_traffic(emu, http)
    async with http.post("/v1/images", json={"prompt": "running"}) as r:
        assert r.status == 201
    status, page = await usage(http, **{"group_by[]": "status,type"})
    assert status == 200
    keys = {
        (g["key"]["status"], g["key"]["type"]): g["metrics"]["request_count"]
        for g in page["data"][0]["groups"]
    }
    assert keys == {
        ("completed", "image"): 1,
        ("completed", "video"): 1,
        ("failed", "image"): 1,
        ("cancelled", "image"): 1,
        ("pending", "image"): 1,
    }
    pending = next(g for g in page["data"][0]["groups"] if g["key"]["status"] == "pending")
    assert pending["metrics"]["duration_ms_p50"] is None


async def test_group_by_api_key(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """group_by api_key_id separates the keys of a team; the filter keeps one key."""
    second = emu.add_key(emu.team_id)
    for secret in (emu.api_key, second, second):
        async with http.post("/v1/images", json={"prompt": "x"}, headers={"X-Api-Key": secret}):
            pass
    _, page = await usage(http, group_by="api_key_id")
    counts = sorted(g["metrics"]["request_count"] for g in page["data"][0]["groups"])
    assert counts == [1, 2]
    key_id = emu.state.keys[second].id
    _, page = await usage(http, api_key_id=key_id)
    assert page["data"][0]["groups"][0]["metrics"]["request_count"] == 2


async def test_filters(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """type, status, lora_id and user_id filters narrow the counted rows."""
    await seed_traffic(emu, http)

    async def count(**params: str) -> int:
        _, page = await usage(http, **params)
        groups = page["data"][0]["groups"]
        return int(groups[0]["metrics"]["request_count"]) if groups else 0

    assert await count(type="video") == 1
    assert await count(type="image,video") == 4
    assert await count(status="completed") == 2
    assert await count(status="failed", type="image") == 1
    assert await count(lora_id="watercolor-dreams") == 1
    assert await count(lora_id="seedance-1-lite") == 1
    assert await count(user_id="usr_01X") == 0


async def test_hourly_buckets_newest_first_with_paging(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Hourly buckets come newest first, empty ones included, paged with page_token."""
    async with http.post("/v1/images", json={"prompt": "x"}) as r:
        assert r.status == 201
    emu.advance(2 * 3600)
    async with http.post("/v1/images", json={"prompt": "y"}) as r:
        assert r.status == 201
    params = {
        "start_time": "2026-05-07T09:30:00Z",
        "end_time": "2026-05-07T13:00:00Z",
        "bucket_width": "1h",
        "limit": "2",
    }
    status, first = await usage(http, **params)
    assert status == 200
    starts = [b["bucket_start"] for b in first["data"]]
    assert starts == ["2026-05-07T12:00:00Z", "2026-05-07T11:00:00Z"]
    assert [len(b["groups"]) for b in first["data"]] == [1, 0]
    assert first["has_more"] is True
    status, second = await usage(http, **params, page_token=first["next_page"])
    assert status == 200
    assert [b["bucket_start"] for b in second["data"]] == [
        "2026-05-07T10:00:00Z",
        "2026-05-07T09:00:00Z",
    ]
    assert [len(b["groups"]) for b in second["data"]] == [1, 0]
    assert (second["has_more"], second["next_page"]) == (False, None)
    changed = {**params, "bucket_width": "15m"}
    status, error = await usage(http, **changed, page_token=first["next_page"])
    assert (status, error["error"]["param"]) == (400, "page_token")
    status, _ = await usage(http, **params, page_token="not-a-token")
    assert status == 400
    emu.advance(DAY + 1)
    status, error = await usage(http, **params, page_token=first["next_page"])
    assert (status, error["error"]["code"]) == (400, "invalid_format")


async def test_page_token_pins_a_default_end_time(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Without end_time, later pages keep the first page's end, so buckets do not shift."""
    _, first = await usage(http, bucket_width="1m", start_time="2026-05-07T09:00:00Z", limit="30")
    emu.advance(600)
    _, second = await usage(
        http,
        bucket_width="1m",
        start_time="2026-05-07T09:00:00Z",
        limit="30",
        page_token=first["next_page"],
    )
    last, following = first["data"][-1]["bucket_start"], second["data"][0]["bucket_start"]
    assert datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp() - 60 == (
        datetime.fromisoformat(following.replace("Z", "+00:00")).timestamp()
    )


async def test_weekly_buckets_start_on_monday(http: aiohttp.ClientSession) -> None:
    """7d buckets are aligned to Monday 00:00 UTC."""
    _, page = await usage(http, bucket_width="7d", start_time="2026-04-20T00:00:00Z")
    assert page["data"][0]["bucket_start"] == "2026-05-04T00:00:00Z"
    assert [b["bucket_start"] for b in page["data"]][-1] == "2026-04-20T00:00:00Z"


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"start_time": None}, "missing_field", "start_time"),
        ({"start_time": "yesterday"}, "invalid_format", "start_time"),
        ({"end_time": "2026-05-06T00:00:00Z"}, "value_out_of_range", "end_time"),
        ({"bucket_width": "2h"}, "invalid_format", "bucket_width"),
        (
            {"bucket_width": "1m", "start_time": "2026-05-01T00:00:00Z"},
            "value_out_of_range",
            "start_time",
        ),
        ({"group_by": "status,type,api_key_id"}, "value_out_of_range", "group_by"),
        ({"group_by": "model"}, "invalid_format", "group_by"),
        ({"group_by": "status,status"}, "invalid_format", "group_by"),
        ({"status": "succeeded"}, "invalid_format", "status"),
        ({"type": "audio"}, "invalid_format", "type"),
        ({"limit": "0"}, "value_out_of_range", "limit"),
        ({"limit": "101"}, "value_out_of_range", "limit"),
    ],
)
async def test_bad_queries(
    http: aiohttp.ClientSession, params: dict[str, str | None], code: str, param: str
) -> None:
    """Missing or malformed parameters are 400s naming the parameter."""
    query = {"start_time": "2026-05-07T00:00:00Z", **params}
    clean = {k: v for k, v in query.items() if v is not None}
    async with http.get("/v1/usage", params=clean) as r:
        assert r.status == 400
        error = (await r.json())["error"]
        assert (error["code"], error["param"]) == (code, param)


async def test_teams_see_only_their_usage(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Another team's generations never show in a team's buckets."""
    other = emu.add_team()
    async with http.post("/v1/images", json={"prompt": "x"}, headers={"X-Api-Key": other.api_key}):
        pass
    _, page = await usage(http)
    assert page["data"][0]["groups"] == []


async def test_golden_shape(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """The response matches the contract example's field names and JSON types."""
    path = FIXTURES / "usage.json"
    if not path.exists():
        pytest.skip("tests/fixtures/usage.json not written yet")
    golden = json.loads(path.read_text())
    await seed_traffic(emu, http)
    _, page = await usage(http, group_by="status,api_key_id")
    assert set(golden) <= set(page)
    bucket, gold_bucket = page["data"][0], golden["data"][0]
    assert set(gold_bucket) <= set(bucket)
    group, gold_group = bucket["groups"][0], gold_bucket["groups"][0]
    assert set(gold_group["key"]) == set(group["key"])
    for name, value in gold_group["metrics"].items():
        assert isinstance(group["metrics"][name], (int, float)), name
        assert isinstance(value, (int, float))
