"""``AsyncAurous(redis_url=...)``: clients on one Redis share one rate budget.

Real emulator, real redis-server, real time: the shared model reads Redis ``TIME``, so
the buckets here are small and refill fast instead of the clock being scaled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
import redis.asyncio
from _redis import RedisServer

from aurous_async import AsyncAurous, RateLimitQueueTimeoutError, RetryPolicy
from aurous_async._errors import FleetUnavailableError, InvalidParameterError
from aurous_async._fleet._governor import FleetGovernor
from aurous_async._ratelimit import Governor
from aurous_async.testing import Emulator, Fault, run_emulator
from aurous_async.testing._settings import DOCUMENTED_BUCKETS, BucketSpec

pytestmark = pytest.mark.anyio

#: images_post: a burst of 4, then 5 a second (a 429 cannot hide in the refill).
SMALL_IMAGES = BucketSpec(4, 300)
#: Retries fast, and many: a test counts the 429s at the server, not failed calls.
RETRY = RetryPolicy(max_attempts=10, timeout=30.0, initial_wait=0.01, max_wait=0.2, jitter=0.0)
_FLEET_LOGGER = "aurous_async.fleet"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator whose images bucket is small and refills fast, jobs never finishing."""
    buckets = {**DOCUMENTED_BUCKETS, "images_post": SMALL_IMAGES}
    async with run_emulator(buckets=buckets, time_scale=1e-6, initial_credits=10_000) as emulator:
        yield emulator


def client(emu: Emulator, redis_url: str | None, **options: Any) -> AsyncAurous:
    """A client of ``emu``, in fleet mode when ``redis_url`` is given."""
    return AsyncAurous(
        emu.api_key, base_url=emu.base_url, redis_url=redis_url, retry=RETRY, **options
    )


def refused(emu: Emulator) -> int:
    """How many requests the emulator answered 429."""
    return sum(1 for record in emu.requests if record.status == 429)


async def create_many(clients: list[AsyncAurous], each: int) -> None:
    """Every client creates ``each`` images at once; all clients at the same time."""
    async with anyio.create_task_group() as tg:
        for one in clients:
            for n in range(each):
                tg.start_soon(lambda c=one, n=n: c.images.create(prompt=f"lighthouse {n}"))


async def test_two_clients_on_one_redis_share_the_bucket_where_two_alone_draw_429s(
    emu: Emulator, redis_url: str
) -> None:
    """Two fleet clients on one key stay within the bucket; the same two without Redis
    each spend the whole burst and draw 429s."""
    async with client(emu, redis_url) as a, client(emu, redis_url) as b:
        started = time.monotonic()
        await create_many([a, b], each=5)
        shared_wall = time.monotonic() - started
    assert refused(emu) <= 1
    # 10 creates, a burst of 4, 5 a second: at least 1.2 s of pacing, and not much more.
    assert 1.0 <= shared_wall < 4.0
    await anyio.sleep(SMALL_IMAGES.capacity / SMALL_IMAGES.per_second)  # full again
    before = refused(emu)
    async with client(emu, None) as a, client(emu, None) as b:
        await create_many([a, b], each=5)
    assert refused(emu) - before >= 2


async def test_a_429_seen_by_one_client_pauses_the_other(emu: Emulator, redis_url: str) -> None:
    """A 429 with Retry-After answered to client A holds client B's next request too."""
    async with client(emu, redis_url) as a, client(emu, redis_url) as b:
        await a.images.create(prompt="the bucket becomes known")
        emu.inject(Fault("rate_limit", match="POST /v1/images", retry_after=1))
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: a.images.create(prompt="refused once"))
            with anyio.fail_after(5):
                while refused(emu) == 0:  # noqa: ASYNC110 (the emulator has no event for it)
                    await anyio.sleep(0.005)
            started = time.monotonic()
            await b.images.create(prompt="held by the pause")
            held = time.monotonic() - started
    assert refused(emu) == 1
    assert held >= 0.9  # Retry-After 1 s (minus the moments before B asked)


async def test_closing_settles_every_grant_in_redis(emu: Emulator, redis_url: str) -> None:
    """After ``async with`` ends, no grant of the client is left in flight in Redis (its
    queued observations were sent before the connections closed)."""
    async with client(emu, redis_url) as a:
        await create_many([a], each=SMALL_IMAGES.capacity)
    async with redis.asyncio.Redis.from_url(redis_url) as store:
        [bucket] = [name async for name in store.scan_iter(b"*:bucket:images_post")]
        # The grants were made through Redis; an empty in-flight set no longer exists.
        assert await store.exists(bucket.replace(b":bucket:", b":inflight:")) == 0


async def script_calls(redis_url: str) -> int:
    """How many scripts the Redis server has run (EVALSHA, and EVAL after NOSCRIPT)."""
    async with redis.asyncio.Redis.from_url(redis_url) as store:
        stats = await store.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))


async def test_sequential_requests_cost_one_redis_round_trip_each(
    emu: Emulator, redis_url: str
) -> None:
    """A steady stream of requests carries each answer to Redis in the next reserve: one
    script call per request, not a reserve and an observation each."""
    calls = 40
    async with client(emu, redis_url) as a:
        image = await a.images.create(prompt="lighthouse")
        await a.images.get(image.id)
        before = await script_calls(redis_url)
        for _ in range(calls):
            await a.images.get(image.id)
        during = await script_calls(redis_url) - before
    # A heartbeat may fall in the loop; the last answer is sent by the background task.
    assert during <= calls + 2
    assert await script_calls(redis_url) - before >= calls + 1


async def test_a_malformed_redis_url_is_a_usage_error_at_construction(emu: Emulator) -> None:
    """A malformed URL raises InvalidParameterError naming redis_url, password hidden."""
    with pytest.raises(InvalidParameterError) as caught:
        client(emu, "redis://:hunter2@127.0.0.1:notaport/0")
    assert caught.value.param == "redis_url"
    assert "hunter2" not in str(caught.value)


async def test_the_environment_variable_turns_fleet_mode_on(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``AUROUS_REDIS_URL`` is read when ``redis_url`` is not given."""
    monkeypatch.setenv("AUROUS_REDIS_URL", "http://not-redis")
    with pytest.raises(InvalidParameterError):
        AsyncAurous(emu.api_key, base_url=emu.base_url)
    monkeypatch.setenv("AUROUS_REDIS_URL", "")
    plain = AsyncAurous(emu.api_key, base_url=emu.base_url)  # empty: fleet mode off
    assert type(plain._requester.governor) is Governor  # the request path as without fleet


async def test_max_queue_wait_bounds_the_wait_for_the_shared_bucket(
    emu: Emulator, redis_url: str
) -> None:
    """With the shared bucket empty, a call bounded by ``limit_queue_wait`` raises
    RateLimitQueueTimeoutError and sends nothing."""
    async with client(emu, redis_url) as a, client(emu, redis_url) as b:
        await create_many([a], each=SMALL_IMAGES.capacity)
        posts = sum(1 for r in emu.requests if r.method == "POST")
        with pytest.raises(RateLimitQueueTimeoutError) as caught, b.limit_queue_wait(0.01):
            await b.images.create(prompt="no token for it")
    assert caught.value.bucket == "images_post"
    assert sum(1 for r in emu.requests if r.method == "POST") == posts


async def test_unreachable_redis_fails_at_enter_naming_the_url_without_password(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """No Redis on the port: ``async with`` raises FleetUnavailableError with the URL
    redacted, promptly, and the client is closed (raised, not logged)."""
    caplog.set_level(logging.INFO, logger=_FLEET_LOGGER)
    port = RedisServer().port  # a free port nobody listens on
    fleet_client = client(emu, f"redis://:hunter2@127.0.0.1:{port}/0")
    started = time.monotonic()
    with pytest.raises(FleetUnavailableError) as caught:
        async with fleet_client:
            pass
    assert time.monotonic() - started < 2.0
    assert f"redis://:***@127.0.0.1:{port}/0" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert fleet_client.closed
    assert caplog.records == []


async def test_unreachable_redis_fails_the_first_request_without_async_with(
    emu: Emulator,
) -> None:
    """A client not entered with ``async with`` reaches Redis at its first metered
    request, which raises FleetUnavailableError and sends nothing."""
    port = RedisServer().port
    fleet_client = client(emu, f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(FleetUnavailableError):
            await fleet_client.images.create(prompt="never sent")
    finally:
        await fleet_client.close()
    assert [r for r in emu.requests if r.method == "POST"] == []


def fleet_governor(fleet_client: AsyncAurous) -> FleetGovernor:
    """The shared governor of a fleet client."""
    assert fleet_client._fleet is not None
    return fleet_client._fleet.governor


async def test_redis_stopped_mid_run_falls_back_to_the_local_share_and_rejoins(
    emu: Emulator, redis_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP: two clients go on, each with half of the bucket, one warning each and
    at most one 429 in all; SIGCONT: both are back on the shared bucket, at one moment
    (neither takes shared tokens while the other still spends its share)."""
    server = redis_factory()
    caplog.set_level(logging.INFO, logger=_FLEET_LOGGER)
    async with client(emu, server.url) as a, client(emu, server.url) as b:
        await create_many([a, b], each=3)
        for one in (a, b):
            assert one._fleet is not None
            await one._fleet.membership.beat()  # both have seen the other by now
            assert one._fleet.live_processes == 2
        server.pause()
        try:
            started = time.monotonic()
            with anyio.fail_after(10):
                await create_many([a, b], each=4)
            alone = time.monotonic() - started
            assert fleet_governor(a).lost
            assert fleet_governor(b).lost
        finally:
            server.resume()
        back: dict[str, float] = {}
        with anyio.fail_after(10):
            while len(back) < 2:
                for name, one in (("a", a), ("b", b)):
                    if name not in back and not fleet_governor(one).lost:
                        back[name] = time.monotonic()
                await anyio.sleep(0.01)
        assert abs(back["a"] - back["b"]) < 0.2
        await create_many([a, b], each=2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per client (each has its own connection)
    assert all("unreachable" in w.getMessage() for w in warnings)
    assert refused(emu) <= 1
    # Each client's share starts empty and refills at half the rate its governor paces
    # with (here the lower bound its headers proved, about half of the bucket's real 5 a
    # second): 4 creates each in about 3.5 s, plus the one bounded stall.
    assert alone < 8.0


async def test_redis_restarted_empty_mid_run_costs_no_stall_and_few_429s(
    emu: Emulator, redis_factory: Callable[..., RedisServer]
) -> None:
    """Redis killed and started empty between two bursts: the clients go on (the scripts
    reload, the buckets are probed again), with at most one 429."""
    server = redis_factory()
    async with client(emu, server.url) as a, client(emu, server.url) as b:
        await create_many([a, b], each=3)
        server.restart()
        started = time.monotonic()
        with anyio.fail_after(10):
            await create_many([a, b], each=4)
        took = time.monotonic() - started
    assert refused(emu) <= 1
    assert took < 5.0
