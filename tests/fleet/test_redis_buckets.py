"""RedisBuckets against a real redis-server: the shared bucket model's semantics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest

from aurous_async._clock import ScaledClock
from aurous_async._fleet._namespace import Namespace
from aurous_async._fleet._protocol import Observation, Settlement, Ticket
from aurous_async._fleet._redis_buckets import RedisBuckets

from ._stores import API_KEY, BASE_URL, T0, ApiBucket, connect

pytestmark = pytest.mark.anyio

BUCKET = "images_post"


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisBuckets]:
    """A store of the test team on the shared server, closed after the test."""
    store = await connect(redis_url)
    try:
        yield store
    finally:
        await store.aclose()


async def seed(store: RedisBuckets, *, capacity: int, remaining: int, rate: float) -> float:
    """Probe an unknown bucket at T0 and answer it with headers; returns the time after."""
    probe = await store.reserve(BUCKET, now=T0)
    assert probe.granted
    assert not probe.known
    await store.observe(
        BUCKET, probe.ticket, Observation(200, capacity, remaining, None, rate), now=T0
    )
    return T0


async def test_unknown_bucket_lets_one_probe_out_until_headers_arrive(redis_url: str) -> None:
    """A bucket never seen grants one probe; others wait briefly until its headers come."""
    first, second = await connect(redis_url), await connect(redis_url)
    try:
        probe = await first.reserve(BUCKET, now=T0)
        held = await second.reserve(BUCKET, now=T0)
        assert probe.granted
        assert not probe.known
        assert not held.granted
        assert not held.known
        assert 0 < held.wait <= 0.05
        await first.observe(BUCKET, probe.ticket, Observation(200, 10, 9, None, 1.0), now=T0)
        after = await second.reserve(BUCKET, now=T0)
        assert after.granted
        assert after.known
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_probe_without_headers_frees_the_next_probe(store: RedisBuckets) -> None:
    """A probe answered without rate-limit headers (or not at all) lets another probe go."""
    probe = await store.reserve(BUCKET, now=T0)
    await store.observe(BUCKET, probe.ticket, Observation(None), now=T0 + 0.01)
    again = await store.reserve(BUCKET, now=T0 + 0.01)
    assert again.granted
    assert not again.known


async def test_a_lost_probe_is_replaced_after_its_ttl(store: RedisBuckets) -> None:
    """A probe never answered (its process died) blocks the bucket only for the probe TTL."""
    await store.reserve(BUCKET, now=T0)
    assert not (await store.reserve(BUCKET, now=T0 + 29.0)).granted
    assert (await store.reserve(BUCKET, now=T0 + 30.5)).granted


async def test_grants_stop_at_the_level_and_resume_with_refill(store: RedisBuckets) -> None:
    """The level from ``Remaining`` is granted at once; the next token waits for refill."""
    await seed(store, capacity=5, remaining=4, rate=1.0)
    grants = [await store.reserve(BUCKET, now=T0) for _ in range(5)]
    assert [g.granted for g in grants] == [True, True, True, True, False]
    assert grants[-1].wait == pytest.approx(1.0, abs=1e-3)
    assert not (await store.reserve(BUCKET, now=T0 + 0.9)).granted
    assert (await store.reserve(BUCKET, now=T0 + 1.01)).granted


async def test_requests_in_flight_never_exceed_the_capacity(store: RedisBuckets) -> None:
    """However long the bucket refills, unanswered grants stop at its capacity."""
    await seed(store, capacity=5, remaining=4, rate=1.0)
    later = T0 + 3600.0
    grants = [await store.reserve(BUCKET, now=later) for _ in range(6)]
    assert sum(g.granted for g in grants) == 5
    assert grants[-1].wait == pytest.approx(1.0)


async def test_remaining_corrects_an_optimistic_model(store: RedisBuckets) -> None:
    """A ``Remaining`` lower than the model (another team process) cuts the level to it."""
    await seed(store, capacity=10, remaining=9, rate=1.0)
    grant = await store.reserve(BUCKET, now=T0)
    assert grant.ticket is not None
    known, level, _ = await store.observe_at(
        BUCKET, grant.ticket, Observation(200, 10, 2, None, 1.0), now=T0 + 0.1, jitter=0.0
    )
    assert known
    assert level == 2.0
    grants = [await store.reserve(BUCKET, now=T0 + 0.1) for _ in range(3)]
    assert [g.granted for g in grants] == [True, True, False]


async def test_a_429_pauses_the_bucket_for_every_process(redis_url: str) -> None:
    """One process's 429 holds every process's requests of that bucket until Retry-After."""
    first, second = await connect(redis_url), await connect(redis_url)
    try:
        await seed(first, capacity=10, remaining=9, rate=1.0)
        grant = await first.reserve(BUCKET, now=T0)
        await first.observe(BUCKET, grant.ticket, Observation(429, 10, 0, 3.0, 1.0), now=T0 + 0.1)
        held = await second.reserve(BUCKET, now=T0 + 0.2)
        assert not held.granted
        assert held.wait == pytest.approx(2.9)
        assert (await second.reserve("get", now=T0 + 0.2)).granted  # other buckets go on
        assert (await second.reserve(BUCKET, now=T0 + 3.2)).granted
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_reserve_settles_the_answers_it_carries_before_taking_a_token(
    store: RedisBuckets,
) -> None:
    """A reserve carrying answers applies them first: the grants leave the in-flight set,
    and a carried 429 refuses the very reserve that carried it."""
    await seed(store, capacity=2, remaining=2, rate=1.0)
    first = await store.reserve(BUCKET, now=T0)
    second = await store.reserve(BUCKET, now=T0)
    in_flight = store.namespace.inflight(BUCKET)
    assert await store.link.client.zcard(in_flight) == 2
    held = await store.reserve(
        BUCKET,
        now=T0 + 0.5,
        settle=[
            Settlement(first.ticket, Observation(200, 2, 1, None, 1.0)),
            Settlement(second.ticket, Observation(429, 2, 0, 3.0, 1.0)),
        ],
    )
    assert await store.link.client.zcard(in_flight) == 0
    assert not held.granted
    assert held.wait == pytest.approx(3.0)


async def test_a_429_pause_gets_jitter_added(redis_url: str) -> None:
    """The shared pause lasts Retry-After plus a non-negative jitter below its bound."""
    store = await connect(redis_url, pause_jitter=0.5)
    try:
        await seed(store, capacity=10, remaining=9, rate=1.0)
        grant = await store.reserve(BUCKET, now=T0)
        await store.observe(BUCKET, grant.ticket, Observation(429, None, None, 2.0), now=T0)
        held = await store.reserve(BUCKET, now=T0)
        assert 2.0 <= held.wait <= 2.5
    finally:
        await store.aclose()


async def test_pause_holds_a_bucket_and_keeps_the_longer_pause(redis_url: str) -> None:
    """``pause`` holds the bucket in every process; a shorter later pause does not cut it."""
    first, second = await connect(redis_url), await connect(redis_url)
    try:
        await first.pause(BUCKET, 5.0, now=T0)
        await first.pause(BUCKET, 1.0, now=T0)
        held = await second.reserve(BUCKET, now=T0 + 1.0)
        assert not held.granted
        assert held.wait == pytest.approx(4.0)
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_stale_ticket_is_reconciled_without_settling_anything(store: RedisBuckets) -> None:
    """A ticket from another epoch (before a restart) settles nothing but still teaches."""
    probe = await store.reserve(BUCKET, now=T0)
    assert probe.ticket is not None
    stale = Ticket("some other epoch", probe.ticket.seq, 0, 0, T0)
    known, level, _ = await store.observe_at(
        BUCKET, stale, Observation(200, 10, 6, None, 1.0), now=T0, jitter=0.0
    )
    # The probe is still in flight: it may not be counted yet, so it is held
    # against the 6 remaining (the level is gross of requests in flight).
    assert known
    assert level == 6.0
    held = [await store.reserve(BUCKET, now=T0) for _ in range(7)]
    assert sum(g.granted for g in held) == 5


async def test_unanswered_grants_expire_as_consumed(store: RedisBuckets) -> None:
    """A grant never observed (its process died) stops counting as in flight after the TTL."""
    await seed(store, capacity=3, remaining=2, rate=0.001)
    assert [(await store.reserve(BUCKET, now=T0)).granted for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert (await store.reserve(BUCKET, now=T0 + 601.0)).granted is False
    # Both were counted as consumed: only the refill of the 601 s is left.
    known, level, _ = await store.observe_at(
        BUCKET, None, Observation(None), now=T0 + 601.0, jitter=0.0
    )
    assert known
    assert level == pytest.approx(0.0 + 0.001 * 601.0 - 2 + 2, abs=0.01)


async def test_key_names_hold_a_hash_of_the_api_key_never_the_key(store: RedisBuckets) -> None:
    """Every key is under one versioned hash tag, and no key or value holds the API key."""
    grant = await store.reserve(BUCKET)
    await store.observe(BUCKET, grant.ticket, Observation(200, 10, 9, None, 1.0))
    client = store.link.client
    keys = [key.decode() if isinstance(key, bytes) else key for key in await client.keys("*")]
    tag = Namespace.for_team(BASE_URL, API_KEY).tag
    assert keys
    assert tag.startswith("{aurous:v1:")
    assert all(key.startswith(tag + ":") for key in keys)
    assert not any(API_KEY in key or API_KEY[-12:] in key for key in keys)
    for key in keys:
        dump = repr(await client.dump(key))
        assert API_KEY not in dump


def test_namespaces_differ_by_api_key_and_base_url() -> None:
    """Two keys, or two base URLs, never share state; a trailing slash does not matter."""
    first = Namespace.for_team(BASE_URL, API_KEY)
    assert Namespace.for_team(BASE_URL + "/", API_KEY) == first
    assert Namespace.for_team(BASE_URL, API_KEY + "x") != first
    assert Namespace.for_team("https://api.example", API_KEY) != first


async def test_live_processes_count_registrations_until_they_expire(redis_url: str) -> None:
    """Each connected store registers; a closed one leaves; a silent one expires."""
    first, second = await connect(redis_url), await connect(redis_url)
    try:
        assert await first.live_processes() == 2
        await second.aclose()
        assert await first.live_processes() == 1
        assert await first.heartbeat() == 1
        assert await first.live_processes(now=time.time() + 16.0) == 0
    finally:
        await first.aclose()
        await second.aclose()


async def test_concurrent_reservers_never_exceed_the_level(redis_url: str) -> None:
    """Eight connections reserving at once get exactly the seeded level, no more."""
    stores = [await connect(redis_url) for _ in range(8)]
    try:
        await seed(stores[0], capacity=40, remaining=30, rate=0.001)
        granted = 0

        async def reserve_many(store: RedisBuckets) -> None:
            nonlocal granted
            for _ in range(25):
                grant = await store.reserve(BUCKET, now=T0)
                granted += grant.granted

        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(reserve_many, store)
        assert granted == 30
    finally:
        for store in stores:
            await store.aclose()


async def test_processes_sharing_a_bucket_never_draw_a_429(redis_url: str) -> None:
    """Eight processes pacing through Redis use the API bucket in full without one 429."""
    clock = ScaledClock(20.0, start=T0)
    capacity, rate, duration = 10, 5.0, 20.0
    api = ApiBucket(capacity, rate, clock.time())
    stores = [await connect(redis_url) for _ in range(8)]
    end = clock.time() + duration

    async def worker(store: RedisBuckets, latency: float) -> None:
        while clock.time() < end:
            grant = await store.reserve(BUCKET, now=clock.time())
            if not grant.granted:
                await clock.sleep(grant.wait)
                continue
            await clock.sleep(latency / 2)
            answer = api.take(clock.time())
            await clock.sleep(latency / 2)
            await store.observe(BUCKET, grant.ticket, answer, now=clock.time())

    try:
        async with anyio.create_task_group() as tg:
            for index, store in enumerate(stores):
                tg.start_soon(worker, store, 0.02 + 0.01 * index)
        ideal = capacity + rate * duration
        assert api.refused == 0
        assert api.served >= 0.8 * ideal, (api.served, ideal)
    finally:
        for store in stores:
            await store.aclose()


async def test_processes_back_from_an_outage_agree_on_one_rejoin_moment(
    redis_url: str,
) -> None:
    """The first process back sets the moment a delay ahead; the others get the same
    moment; after the window a later outage gets a moment of its own."""
    first, second = await connect(redis_url), await connect(redis_url)
    try:
        await first.link.call(lambda: first.link.client.delete(first.namespace.rejoin))
        assert await first.rejoin(2.0, now=T0) == pytest.approx(2.0)
        assert await second.rejoin(2.0, now=T0 + 0.5) == pytest.approx(1.5)
        assert await first.rejoin(2.0, now=T0 + 3.0) == pytest.approx(-1.0)  # go at once
        assert await second.rejoin(2.0, now=T0 + 10.0) == pytest.approx(2.0)
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_level_corrected_before_the_rejoin_moment_is_probed_again(
    redis_url: str,
) -> None:
    """Calls sent before an outage may run only when Redis is back, correcting a level
    from an answer that no longer holds: back at the rejoin moment, such a level is
    dropped and the bucket probed; one corrected after the moment is trusted."""
    store, other = await connect(redis_url), await connect(redis_url)
    headers = Observation(200, 20, 19, None, 10.0)
    try:
        await store.link.call(lambda: store.link.client.delete(store.namespace.rejoin))
        probe = await other.reserve(BUCKET, now=T0)
        await other.observe(BUCKET, probe.ticket, headers, now=T0)
        await other.observe(BUCKET, None, headers, now=T0 + 5)  # a late call, run at resume
        assert await store.rejoin(2.0, now=T0 + 5) == pytest.approx(2.0)
        first = await store.reserve(BUCKET, now=T0 + 7)
        assert first.granted
        assert not first.known  # the probe
        await store.observe(BUCKET, first.ticket, headers, now=T0 + 7.1)
        other_back = await other.rejoin(2.0, now=T0 + 7.2)
        assert other_back == pytest.approx(-0.2)
        assert (await other.reserve(BUCKET, now=T0 + 7.2)).known  # corrected after it
    finally:
        await store.aclose()
        await other.aclose()
