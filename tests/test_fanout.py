"""Fan-out: hundreds of concurrent creates share one governor and never duplicate."""

from __future__ import annotations

import anyio
import pytest
from _sdk_helpers import emulated

from aurous_async import Generation, RetryPolicy
from aurous_async.testing import DOCUMENTED_BUCKETS

pytestmark = pytest.mark.anyio

N = 500


async def test_500_concurrent_creates_pace_without_429_storms_or_duplicates() -> None:
    """500 creates on one client: no 429 after the first one, 500 distinct generations."""
    # One fast clock drives both the emulator's token buckets and the client's governor:
    # the 380 s of refill that 500 creates need on the documented images_post bucket
    # (120 burst, 60/min) pass in about a second of real time.
    retry = RetryPolicy(timeout=3600.0, initial_wait=0.01, max_wait=0.1, jitter=0.01)
    async with emulated(
        rate_scale=400.0, retry=retry, buckets=DOCUMENTED_BUCKETS, initial_credits=N * 2
    ) as (emu, client):
        results: list[Generation] = []

        async def create(i: int) -> None:
            results.append(await client.images.create(prompt=f"fan-out {i}"))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(N):
                    tg.start_soon(create, i)

        statuses = [r.status for r in emu.requests if r.method == "POST" and r.path == "/v1/images"]
        first_429 = statuses.index(429) if 429 in statuses else len(statuses)
        assert 429 not in statuses[first_429 + 1 :]
        assert statuses.count(201) >= N
        ids = {g.id for g in results}
        assert len(results) == N
        assert len(ids) == N
        server_ids = [row["id"] for row in emu.generations()]
        assert len(server_ids) == N
        assert set(server_ids) == ids
        state = client.rate_limits["images_post"]
        assert state.limit == 120
        assert state.in_flight == 0


@pytest.mark.parametrize(("timeout", "api_version"), [(None, None), (5.0, "2026-05-15")])
def test_generation_calls_built_from_a_tuple_equal_their_keyword_form(
    timeout: float | None, api_version: str | None
) -> None:
    """``fetch_call``/``cancel_call`` skip keyword binding; the fields must still line up."""
    from aurous_async._fanout import cancel_call, fetch_call
    from aurous_async._requester import Call

    built = [fetch_call("img_1", timeout, api_version), cancel_call("img 1", timeout, api_version)]
    expected = [
        ("GET", "/v1/images/img_1", "/v1/images/{id}"),
        ("POST", "/v1/images/img%201/cancel", "/v1/images/{id}/cancel"),
    ]
    for call, (method, path, route) in zip(built, expected, strict=True):
        assert call == Call(
            method=method,
            path=path,
            route=route,
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
