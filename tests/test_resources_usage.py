"""``client.usage`` (aggregates) and ``client.usage.events`` (the ledger) end to end."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _sdk_helpers import emulated, settle

from aurous_async import InvalidParameterError, UsageBucket, UsageEvent, UsageEventType

pytestmark = pytest.mark.anyio


def _now(emu: Any) -> datetime:
    return datetime.fromtimestamp(emu.clock.time(), tz=timezone.utc)


async def test_aggregates_group_and_page() -> None:
    """Usage buckets come newest first, grouped, and page through ``next_page``."""
    async with emulated() as (emu, client):
        for i in range(3):
            await client.images.create(prompt=f"u{i}")
        settle(emu, 60)
        start = _now(emu) - timedelta(hours=3)
        buckets = await client.usage.list(
            start_time=start, bucket_width="1h", group_by=["status"], limit=1
        ).collect()
        assert all(isinstance(b, UsageBucket) for b in buckets)
        assert len(buckets) >= 3
        assert [b.bucket_start for b in buckets] == sorted(
            (b.bucket_start for b in buckets), reverse=True
        )
        requests = [r for r in emu.requests if r.path == "/v1/usage"]
        assert len(requests) == len(buckets)
        groups = [g for b in buckets for g in b.groups]
        assert sum(g.metrics.request_count or 0 for g in groups) == 3
        assert {g.key["status"] for g in groups} == {"completed"}


async def test_aggregates_with_filters_and_end_time() -> None:
    """Filters and an explicit window are sent as query parameters."""
    async with emulated() as (emu, client):
        await client.images.create(prompt="filtered")
        settle(emu, 60)
        end = _now(emu) + timedelta(minutes=1)
        buckets = await client.usage.list(
            start_time=end - timedelta(days=2),
            end_time=end,
            group_by=["type", "status"],
            type=["image"],
            status=["completed", "failed"],
        ).collect()
        groups = [g for b in buckets for g in b.groups]
        assert groups
        assert groups[0].key == {"type": "image", "status": "completed"}
        assert groups[0].metrics.image_count == 1


async def test_ledger_events_filter_and_page() -> None:
    """Ledger rows page newest first and filter by type."""
    async with emulated() as (emu, client):
        for i in range(3):
            await client.images.create(prompt=f"l{i}")
        settle(emu)
        events = await client.usage.events.list(limit=2).collect()
        assert all(isinstance(e, UsageEvent) for e in events)
        kinds = {e.type for e in events}
        assert UsageEventType.HOLD in kinds
        pages = [p async for p in client.usage.events.list(limit=2).pages()]
        assert len(pages) == (len(events) + 1) // 2
        holds = await client.usage.events.list(type="hold").collect()
        assert len(holds) == 3
        assert all(e.type == UsageEventType.HOLD for e in holds)
        after = await client.usage.events.list(starting_after=events[0].id).collect()
        assert [e.id for e in after] == [e.id for e in events[1:]]


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"start_time": datetime(2026, 5, 1)}, "start_time"),
    (
        {
            "start_time": datetime(2026, 5, 2, tzinfo=timezone.utc),
            "end_time": datetime(2026, 5, 1, tzinfo=timezone.utc),
        },
        "end_time",
    ),
    (
        {"start_time": datetime(2026, 5, 1, tzinfo=timezone.utc), "bucket_width": "2h"},
        "bucket_width",
    ),
    (
        {
            "start_time": datetime(2026, 5, 1, tzinfo=timezone.utc),
            "group_by": ["status", "type", "user_id"],
        },
        "group_by",
    ),
    ({"start_time": datetime(2026, 5, 1, tzinfo=timezone.utc), "group_by": ["colour"]}, "group_by"),
    ({"start_time": datetime(2026, 5, 1, tzinfo=timezone.utc), "limit": 101}, "limit"),
]


@pytest.mark.parametrize(("kwargs", "param"), INVALID)
async def test_invalid_usage_queries_are_refused(kwargs: dict[str, Any], param: str) -> None:
    """Naive or reversed instants, unknown widths and too many groups are refused offline."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError) as info:
            client.usage.list(**kwargs)
        assert info.value.param == param
        with pytest.raises(InvalidParameterError) as bad_type:
            client.usage.events.list(type="bonus")
        assert bad_type.value.param == "type"
        assert emu.requests == []
