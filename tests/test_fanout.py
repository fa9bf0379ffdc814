"""Fan-out: hundreds of concurrent creates share one governor and never duplicate."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import anyio
import pytest
from _sdk_helpers import emulated

from aurous_async import CostLimitExceededError, Generation, RetryPolicy
from aurous_async._fanout import CreateMany, fan_out
from aurous_async._price_shape import price_shape
from aurous_async.models import Cost, Estimate
from aurous_async.testing import DOCUMENTED_BUCKETS, Emulator

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


def _estimates(emu: Emulator) -> list[Any]:
    return [r for r in emu.requests if r.method == "POST" and r.path.endswith("/estimate")]


def _creates(emu: Emulator) -> list[Any]:
    return [r for r in emu.requests if r.method == "POST" and r.path == "/v1/images"]


async def test_a_thousand_requests_of_one_price_shape_cost_one_estimate() -> None:
    """1,000 distinct prompts of one shape: one estimate call, then the creates start."""
    requests = [{"prompt": f"lighthouse {i}", "seed": i, "size": "2k_16_9"} for i in range(1000)]
    async with emulated(buckets=DOCUMENTED_BUCKETS, initial_credits=5000) as (emu, client):
        batch = client.images.create_many(requests, max_cost=1000)
        async with batch:
            first = await batch.__anext__()
        assert len(_estimates(emu)) == 1
        assert batch.estimated_cost == 1000.0
        first_create = emu.requests.index(_creates(emu)[0])
        assert emu.requests.index(_estimates(emu)[0]) < first_create
        assert first.id in {g["id"] for g in emu.generations()}


async def test_each_price_shape_is_estimated_once_and_both_costs_are_reported() -> None:
    """Three shapes, thirteen requests: three estimates; estimated and actual cost agree."""
    requests: list[dict[str, object]] = [
        *({"prompt": f"a {i}"} for i in range(6)),
        *({"prompt": f"b {i}", "count": 2, "seed": i} for i in range(4)),
        *({"prompt": f"c {i}", "enhance_prompt": True, "negative_prompt": "fog"} for i in range(3)),
    ]
    async with emulated() as (emu, client):
        batch = client.images.create_many(requests, max_cost=100)
        made = [g async for g in batch]
    assert len(_estimates(emu)) == 3
    assert batch.estimated_cost == pytest.approx(6 * 1 + 4 * 2 + 3 * 2)
    assert batch.actual_cost == pytest.approx(sum(g.cost.amount for g in made if g.cost))
    assert batch.actual_cost == pytest.approx(batch.estimated_cost)
    assert batch.accepted == len(made) == 13


async def test_without_max_cost_nothing_is_estimated_and_the_actual_cost_is_kept() -> None:
    """No max_cost: no estimate call, estimated_cost None, actual_cost still summed."""
    async with emulated() as (emu, client):
        batch = client.images.create_many([{"prompt": f"p {i}"} for i in range(3)])
        made = [g async for g in batch]
    assert _estimates(emu) == []
    assert batch.estimated_cost is None
    assert batch.actual_cost == pytest.approx(3.0)
    assert len(made) == 3


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ({"prompt": "a", "seed": 1}, {"prompt": "b", "seed": 2}, True),
        (
            {"prompt": "a", "character_id": "char_1"},
            {"prompt": "a", "reference_image_urls": ["x"]},
            True,
        ),
        (
            {"prompt": "a", "negative_prompt": "x", "webhook_url": "https://h"},
            {"prompt": "b"},
            True,
        ),
        ({"prompt": "a", "count": 1}, {"prompt": "a", "count": 2}, False),
        ({"prompt": "a", "size": "2k_1_1"}, {"prompt": "a", "size": "4k_1_1"}, False),
        ({"prompt": "a", "lora_id": "l1"}, {"prompt": "a"}, False),
        ({"duration": 5, "resolution": "720p"}, {"resolution": "720p", "duration": 5}, True),
    ],
)
def test_price_shapes(left: dict[str, object], right: dict[str, object], same: bool) -> None:
    """Only parameters that may change the price tell shapes apart; key order never."""
    assert (price_shape(left) == price_shape(right)) is same


def test_a_shape_that_cannot_be_decided_is_none() -> None:
    """A value with no canonical JSON form leaves the shape undecided."""
    assert price_shape({"steps": object()}) is None
    assert price_shape({"guidance_scale": float("nan")}) is None


async def test_requests_of_undecided_shape_are_estimated_one_by_one() -> None:
    """Fan-out falls back to one estimate per request only where the shape is undecided."""
    priced: list[str] = []

    async def estimate(request: Mapping[str, Any]) -> Estimate:
        priced.append(str(request["prompt"]))
        return Estimate(estimated_cost=Cost(amount=1.0))

    async def create(request: Mapping[str, Any]) -> Generation:
        raise AssertionError("refused before any create")

    def validate(request: Mapping[str, Any]) -> dict[str, object]:
        return dict(request)

    requests = [
        {"prompt": "a", "steps": 10},
        {"prompt": "b", "steps": 10},
        {"prompt": "c", "steps": object()},
        {"prompt": "d", "steps": object()},
    ]
    report = CreateMany(
        functools.partial(
            fan_out,
            requests,
            validate=validate,
            create=create,
            estimate=estimate,
            max_cost=1.0,
            max_concurrency=4,
        )
    )
    with pytest.raises(CostLimitExceededError) as info:
        await report.__anext__()
    assert sorted(priced) == ["a", "c", "d"]
    assert info.value.estimated == 4.0


def test_the_cli_prices_by_the_same_shapes() -> None:
    """The CLI groups its batch lines with the SDK's price_shape, per kind."""
    from aurous_async._cli._batch import _price_shape
    from aurous_async._cli._inputs import Request

    def line(number: int, kind: str, body: dict[str, object]) -> Request:
        return Request(line=number, kind=kind, params=body, body=body, digest=str(number))

    image_a = line(1, "image", {"prompt": "a", "count": 2})
    image_b = line(2, "image", {"prompt": "b", "count": 2})
    video = line(3, "video", {"count": 2})
    assert _price_shape(image_a) == _price_shape(image_b) != _price_shape(video)
    assert _price_shape(image_a).endswith(str(price_shape(image_a.body)))
