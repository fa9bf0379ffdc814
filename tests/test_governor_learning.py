"""The governor learns a bucket from the server: capacity, level and refill rate, and no
header can stop a bucket for good."""

from __future__ import annotations

import asyncio

import pytest
from _sdk_helpers import FAST_RETRY, emulated, serve
from aiohttp import web

from aurous_async import AsyncAurous, RateLimitError
from aurous_async._clock import ScaledClock
from aurous_async._requester import Call
from aurous_async.testing._settings import DOCUMENTED_BUCKETS as SERVER_BUCKETS
from aurous_async.testing._settings import BucketSpec as ServerSpec

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("capacity", "per_minute"),
    [
        (10, 60.0),  # a smaller plan
        (120, 30.0),  # the documented capacity, half the documented refill
        (240, 240.0),  # a larger plan
    ],
)
async def test_capacity_and_refill_are_learned_from_the_server(
    capacity: int, per_minute: float
) -> None:
    """``capacity + 15`` concurrent creates on an undocumented images_post bucket see at
    most one 429, and the governor ends up pacing within 10% of the server's rate."""
    buckets = {**SERVER_BUCKETS, "images_post": ServerSpec(capacity, per_minute)}
    # At 20x a loaded machine's scheduling delays stay small against the refill the
    # governor measures (at 100x, 10 ms of delay is a whole second of refill).
    async with emulated(rate_scale=20.0, initial_credits=1e6, buckets=buckets) as (emu, client):
        await asyncio.gather(*(client.images.create(prompt="x") for _ in range(capacity + 15)))
        statuses = [r.status for r in emu.requests if r.path == "/v1/images"]
        assert statuses.count(201) == capacity + 15
        assert statuses.count(429) <= 1
        state = client.rate_limits["images_post"]
        assert state.limit == capacity
        assert state.refill_per_second == pytest.approx(per_minute / 60, rel=0.1)


async def test_the_first_wave_waits_for_the_first_answer() -> None:
    """Until a bucket's first answer only one request of it is out: 25 creates on a
    10-token bucket start with one request, then fill the 9 tokens it reports."""
    buckets = {**SERVER_BUCKETS, "images_post": ServerSpec(10, 60.0)}
    async with emulated(rate_scale=100.0, buckets=buckets) as (emu, client):
        await asyncio.gather(*(client.images.create(prompt="x") for _ in range(25)))
        statuses = [r.status for r in emu.requests if r.path == "/v1/images"]
        assert statuses == [201] * 25


class _Poisoner:
    """A bare API answering ``{}`` with the rate-limit headers it is told to send, and
    recording the client clock's time of every request."""

    def __init__(self, clock: ScaledClock, first: dict[str, str], status: int = 200) -> None:
        self.clock = clock
        self.first = first
        self.status = status
        self.seen: list[float] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(self.clock.time())
        if len(self.seen) == 1:
            return web.json_response({}, status=self.status, headers=self.first)
        headers = {
            "X-RateLimit-Limit": "1200",
            "X-RateLimit-Remaining": "1198",
            "X-RateLimit-Reset": str(int(self.clock.time()) + 1),
        }
        return web.json_response({}, headers=headers)


@pytest.mark.parametrize(
    ("status", "headers", "within"),
    [
        # "Empty until the year 5138" on a success: not believed beyond one refill (and
        # the 200x clock's magnified scheduling; see below).
        (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "99999999999"}, 126.0),
        (
            200,
            {
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "99999999999",
            },
            126.0,
        ),
        # A 429 asking for a year: the pause is one full refill (120 s) plus a second,
        # plus the jitter (up to 0.5 s), plus scheduling magnified by the 200x clock: on a
        # loaded machine 20 ms of real delay is 4 s here. Far from the year asked for.
        (
            429,
            {"X-RateLimit-Limit": "1200", "X-RateLimit-Remaining": "0", "Retry-After": "31536000"},
            130.0,
        ),
    ],
)
async def test_one_poisoned_header_cannot_stop_a_bucket(
    status: int, headers: dict[str, str], within: float
) -> None:
    """After one absurd rate-limit header, the next call is still sent within the
    bucket's refill time (here the documented GET bucket's 120 s, plus rounding)."""
    clock = ScaledClock(200.0)
    server = _Poisoner(clock, headers, status)
    async with (
        serve([("GET", "/v1/ping", server.handle)]) as base_url,
        AsyncAurous("k", base_url=base_url, clock=clock, retry=FAST_RETRY) as client,
    ):
        call = Call(method="GET", path="/v1/ping", route="/v1/ping")
        if status == 429:
            with pytest.raises(RateLimitError):
                await client._requester.send(call)
        else:
            await client._requester.send(call)
        await client._requester.send(call)
    assert len(server.seen) == 2
    assert server.seen[1] - server.seen[0] <= within
    if status == 429:
        assert server.seen[1] - server.seen[0] >= 121.0  # the pause itself was kept
