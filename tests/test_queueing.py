"""Waiting for a rate-limit permit: outside the call's deadline, bounded by max_queue_wait."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from _clocks import ManualClock
from _sdk_helpers import emulated

from aurous_async import APITimeoutError, RateLimitQueueTimeoutError
from aurous_async._ratelimit import BucketSpec, Governor, RateLimit
from aurous_async.testing import Fault

pytestmark = pytest.mark.anyio

NOW = 1_714_752_900.0


async def _answered(gov: Governor, bucket: str, rate_limit: RateLimit) -> None:
    """Send and answer a bucket's first request, so the governor knows its level."""
    gov.observe(bucket, rate_limit, 200, permit=await gov.acquire(bucket))


async def test_a_wait_known_to_be_too_long_raises_at_once() -> None:
    """When the model says the permit is further away than max_wait, nothing waits."""
    clock = ManualClock(NOW)
    gov = Governor(clock, {"b": BucketSpec(2, 0.5)})
    await _answered(gov, "b", RateLimit(2, 1, NOW + 2))
    await gov.acquire("b")  # the last token, held in flight
    with pytest.raises(RateLimitQueueTimeoutError) as info:
        await gov.acquire("b", max_wait=1.5)
    error = info.value
    assert (error.bucket, error.position, error.waited, error.max_queue_wait) == ("b", 1, 0.0, 1.5)
    assert error.estimated_wait == pytest.approx(2.0, abs=0.01)
    assert isinstance(error, APITimeoutError)
    assert not error.maybe_sent
    assert "'b'" in str(error)
    assert "position 1" in str(error)
    assert clock.now == NOW
    assert gov.snapshot()["b"].queued == 0


async def test_a_stalled_queue_raises_once_max_wait_has_passed() -> None:
    """Waiters whose estimate fit but whose turn never came raise at their own bound,
    the head and a waiter behind it alike."""
    clock = ManualClock(NOW)
    gov = Governor(clock, {"b": BucketSpec(1, 1.0)})
    await _answered(gov, "b", RateLimit(1, 0, NOW + 1))
    clock.advance(1.01)
    await gov.acquire("b")  # in flight and never answered: the queue stalls behind it
    errors: dict[str, RateLimitQueueTimeoutError] = {}

    async def wait(name: str, max_wait: float) -> None:
        with pytest.raises(RateLimitQueueTimeoutError) as info:
            await gov.acquire("b", max_wait=max_wait)
        errors[name] = info.value

    with anyio.fail_after(10):  # real seconds: a hang would be a bug
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, "head", 5.0)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(wait, "second", 3.0)
            await anyio.wait_all_tasks_blocked()
            assert gov.snapshot()["b"].queued == 2
            clock.advance(3.01)
            await anyio.wait_all_tasks_blocked()
            assert set(errors) == {"second"}
            clock.advance(2.0)
    assert errors["second"].position == 2
    assert errors["second"].waited == pytest.approx(3.01)
    assert errors["head"].position == 1
    assert errors["head"].waited == pytest.approx(5.01)
    state = gov.snapshot()["b"]
    assert (state.queued, state.in_flight) == (0, 1)


async def test_a_queue_within_max_wait_is_served() -> None:
    """A bounded waiter whose token comes in time gets it."""
    clock = ManualClock(NOW)
    gov = Governor(clock, {"b": BucketSpec(1, 1.0)})
    await _answered(gov, "b", RateLimit(1, 0, NOW + 1))
    with anyio.fail_after(10):  # real seconds: a hang would be a bug
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: gov.acquire("b", max_wait=2.0))
            await anyio.wait_all_tasks_blocked()
            clock.advance(1.01)
    assert gov.snapshot()["b"].in_flight == 1


async def test_a_naive_fan_out_of_creates_is_paced_to_the_bucket() -> None:
    """300 concurrent creates on the documented images_post bucket (120 burst, 1/s) all
    succeed, though the queue outlasts the call timeout many times, with at most one
    429 and a wall time within 5% of the bucket's bound: 180 s of the shared clock plus
    the first create's round trip (which tells the governor the bucket's level)."""
    async with emulated(rate_scale=100.0, initial_credits=1e6, client_options={"timeout": 1.0}) as (
        emu,
        client,
    ):
        clock = client._clock
        finished: list[float] = []

        async def create() -> str:
            image = await client.images.create(prompt="x")
            finished.append(clock.time())
            return image.id

        started = clock.time()
        created = await asyncio.gather(*(create() for _ in range(300)))
        wall = clock.time() - started
        first_round_trip = finished[0] - started
        assert len(set(created)) == 300
        statuses = [r.status for r in emu.requests if r.path == "/v1/images"]
        assert statuses.count(429) <= 1
        assert statuses.count(201) == 300
        bound = (300 - 120) / 1.0 + first_round_trip
        assert bound - first_round_trip - 1 <= wall <= 1.05 * bound
        assert wall > 1.0 * 100  # the real wait (wall / 100) outlasted the 1 s timeout
        assert client.rate_limits["images_post"].queued == 0


async def test_max_queue_wait_raises_before_sending() -> None:
    """A call whose permit is further away than ``max_queue_wait`` raises at once, and
    ``limit_queue_wait`` sets the bound for a block of calls."""
    # 10 a minute at 4x: the 11th permit is 1.5 real seconds after the bucket drained, so
    # a slow machine's first 10 creates do not let it come within max_queue_wait.
    async with emulated(rate_scale=4.0, client_options={"max_queue_wait": 0.5}) as (emu, client):
        with client.limit_queue_wait(None):  # the first round trip takes a while here
            async with anyio.create_task_group() as tg:
                for i in range(10):
                    tg.start_soon(
                        lambda i=i: client.webhook_endpoints.create(
                            url=f"https://example.com/{i}", events=["*"]
                        )
                    )
        sent = len(emu.requests)
        with pytest.raises(RateLimitQueueTimeoutError) as info:
            await client.webhook_endpoints.create(url="https://example.com/x", events=["*"])
        assert info.value.bucket == "webhook_endpoints"
        assert info.value.estimated_wait is not None
        assert info.value.estimated_wait > 0.5
        with client.limit_queue_wait(2.0), pytest.raises(RateLimitQueueTimeoutError) as info:
            await client.webhook_endpoints.create(url="https://example.com/y", events=["*"])
        assert info.value.max_queue_wait == 2.0
        assert len(emu.requests) == sent
        with client.limit_queue_wait(None):
            await client.webhook_endpoints.create(url="https://example.com/z", events=["*"])
        assert len(emu.requests) == sent + 1
        assert [r.status for r in emu.requests].count(429) == 0


def test_a_negative_max_queue_wait_is_refused() -> None:
    """``max_queue_wait`` must be a non-negative number of seconds or ``None``."""
    from aurous_async import AsyncAurous

    with pytest.raises(ValueError, match="max_queue_wait"):
        AsyncAurous("k", base_url="http://127.0.0.1:9", max_queue_wait=-1.0)


async def test_a_retry_budget_does_not_count_the_queue() -> None:
    """A call that queued longer than its timeout and then met a 429 is still retried:
    its retry budget, like its deadline, counts its own time only."""
    async with emulated(rate_scale=50.0) as (emu, client):
        async with anyio.create_task_group() as tg:
            for i in range(10):  # the webhook_endpoints bucket's burst
                tg.start_soon(
                    lambda i=i: client.webhook_endpoints.create(
                        url=f"https://example.com/{i}", events=["*"]
                    )
                )
        emu.inject(Fault("rate_limit", match="POST /v1/webhook_endpoints", retry_after=1))
        clock = client._clock
        started = clock.time()
        await client.webhook_endpoints.create(
            url="https://example.com/late", events=["*"], timeout=3.0
        )
        assert clock.time() - started > 3.0  # queued (a token takes 6 s) and retried
        statuses = [r.status for r in emu.requests]
        assert statuses[-2:] == [429, 201]
