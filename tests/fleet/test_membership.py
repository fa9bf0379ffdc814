"""Membership: the live-process count and each process's local share."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from _redis import RedisServer

from aurous_async._clock import ScaledClock
from aurous_async._fleet._membership import Membership, local_share
from aurous_async._ratelimit import BucketSpec

from ._stores import connect

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("live", "share"),
    [
        (0, BucketSpec(120, 1.0)),
        (1, BucketSpec(120, 1.0)),
        (4, BucketSpec(30, 0.25)),
        (500, BucketSpec(1, 1.0 / 500)),
    ],
)
def test_local_share_divides_capacity_and_refill(live: int, share: BucketSpec) -> None:
    """The share is capacity and refill over the live count, never below one token."""
    assert local_share(BucketSpec(120, 1.0), live) == share


async def test_membership_counts_live_processes_and_keeps_the_last_count(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """Heartbeats see every registered process; with Redis gone the last count stays."""
    server = redis_factory()
    stores = [await connect(server.url, call_timeout=0.2) for _ in range(4)]
    membership = Membership(stores[0], interval=5.0, clock=ScaledClock(1000.0))
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(membership.run)
            assert membership.live == 4
            assert membership.share(BucketSpec(120, 1.0)) == BucketSpec(30, 0.25)
            server.stop()
            await membership.beat()
            assert membership.live == 4
            tg.cancel_scope.cancel()
    finally:
        for store in stores:
            await store.aclose()
