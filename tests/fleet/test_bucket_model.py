"""The Lua scripts and LocalBuckets are one model: same events, same answers."""

from __future__ import annotations

from typing import Any

import pytest
from _redis import RedisServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aurous_async._fleet import BucketTimings, LocalBuckets, Observation, Reservation
from aurous_async._fleet._protocol import Settlement, Ticket

from ._stores import T0, connect

pytestmark = pytest.mark.anyio

# No idle expiry: Redis expires keys on its own clock, not the injected one.
TIMINGS = BucketTimings(idle_ttl=1e9)
STEPS = st.sampled_from([0.0, 0.0, 0.0, 1e-4, 0.01, 0.3, 1.0, 1.7, 31.0, 650.0])
BUCKETS = st.sampled_from(["get", "images_post"])

# ("reserve", bucket, settled first, dt), ("observe", index, with ticket, observation,
# jitter, dt), ("pause", bucket, seconds, dt): the last item is always the time step.
# "settled first" lists (index, with ticket, observation) of answers the reserve carries.
Step = tuple[Any, ...]

observations = st.builds(
    Observation,
    status=st.sampled_from([200, 200, 200, 429, 500, None]),
    limit=st.sampled_from([None, 3, 10, 10, 10]),
    remaining=st.one_of(st.none(), st.integers(0, 12), st.integers(0, 3)),
    retry_after=st.sampled_from([None, None, 0.5, 2.0]),
    refill_per_second=st.sampled_from([None, 0.5, 2.0, 2.0, 2.0]),
)
carried = st.lists(st.tuples(st.integers(0, 50), st.booleans(), observations), max_size=3)
reserves = st.tuples(st.just("reserve"), BUCKETS, st.one_of(st.just([]), carried), STEPS)
observes = st.tuples(
    st.just("observe"),
    st.integers(0, 50),
    st.booleans(),
    observations,
    st.sampled_from([0.0, 0.25]),
    STEPS,
)
pauses = st.tuples(st.just("pause"), BUCKETS, st.sampled_from([0.0, 0.5, 3.0]), STEPS)
steps = st.lists(
    st.one_of(reserves, reserves, reserves, observes, observes, pauses), min_size=5, max_size=60
)
# Most scripts start by teaching a bucket its level, so that they reach deeper states.
seeds = st.lists(
    st.tuples(
        BUCKETS,
        st.builds(
            Observation,
            status=st.just(200),
            limit=st.sampled_from([3, 10]),
            remaining=st.integers(0, 10),
            refill_per_second=st.sampled_from([0.5, 2.0]),
        ),
    ),
    max_size=2,
)


def same_reservation(redis: Reservation, local: Reservation) -> None:
    """Both stores answered one reserve alike (epochs are each store's own)."""
    assert (redis.granted, redis.known) == (local.granted, local.known)
    assert redis.wait == pytest.approx(local.wait, rel=1e-12, abs=1e-9)
    assert redis.now == local.now
    if redis.ticket is not None:
        assert local.ticket is not None
        assert redis.ticket[1:] == local.ticket[1:]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(taught=seeds, script=steps)
async def test_lua_and_python_models_agree(
    redis_server: RedisServer, taught: list[tuple[str, Observation]], script: list[Step]
) -> None:
    """Any sequence of reserves (settling answers first or not), observations and pauses
    gets the same answers from both."""
    redis_server.flushall()
    redis = await connect(redis_server.url, timings=TIMINGS)
    local = LocalBuckets(timings=TIMINGS, pause_jitter=0.0)
    out: list[tuple[str, Ticket, Ticket]] = []
    now = T0
    teach: list[Step] = []
    for bucket, observation in taught:
        teach += [("reserve", bucket, [], 0.0), ("observe", -1, True, observation, 0.0, 0.0)]
    try:
        for step in teach + script:
            now += step[-1]
            if step[0] == "reserve":
                _, bucket, carried_answers, _ = step
                # The Lua script settles and reserves in one call; the reference observes
                # each answer, then reserves.
                settle: list[Settlement] = []
                for index, with_ticket, observation in carried_answers:
                    mine = [i for i, (b, _, _) in enumerate(out) if b == bucket]
                    if not mine:
                        break
                    _, redis_ticket, local_ticket = out.pop(mine[index % len(mine)])
                    settle.append(Settlement(redis_ticket if with_ticket else None, observation))
                    local.observe_at(
                        bucket,
                        local_ticket if with_ticket else None,
                        observation,
                        now=now,
                        jitter=0.0,
                    )
                from_redis = await redis.reserve(bucket, now=now, settle=settle)
                from_local = await local.reserve(bucket, now=now)
                same_reservation(from_redis, from_local)
                if from_redis.ticket is not None and from_local.ticket is not None:
                    out.append((bucket, from_redis.ticket, from_local.ticket))
            elif step[0] == "observe":
                _, index, with_ticket, observation, jitter, _ = step
                if not out:
                    continue
                bucket, redis_ticket, local_ticket = out.pop(index % len(out))
                answers = (
                    await redis.observe_at(
                        bucket,
                        redis_ticket if with_ticket else None,
                        observation,
                        now=now,
                        jitter=jitter,
                    ),
                    local.observe_at(
                        bucket,
                        local_ticket if with_ticket else None,
                        observation,
                        now=now,
                        jitter=jitter,
                    ),
                )
                (known, level, paused), (local_known, local_level, local_paused) = answers
                assert known == local_known
                assert paused == pytest.approx(local_paused, rel=1e-12)
                if level is None or local_level is None:
                    assert level == local_level
                else:
                    assert level == pytest.approx(local_level, rel=1e-12, abs=1e-9)
            else:
                _, bucket, seconds, _ = step
                await redis.pause(bucket, seconds, now=now)
                await local.pause(bucket, seconds, now=now)
    finally:
        await redis.aclose()


async def test_local_buckets_probe_then_pace_by_their_own_clock() -> None:
    """The in-process store probes an unknown bucket, then grants the level it learnt."""
    local = LocalBuckets(pause_jitter=0.0)
    probe = await local.reserve("get", now=T0)
    assert probe.granted
    assert not probe.known
    assert not (await local.reserve("get", now=T0)).granted
    await local.observe("get", probe.ticket, Observation(200, 3, 2, None, 1.0), now=T0)
    grants = [await local.reserve("get", now=T0) for _ in range(3)]
    assert [g.granted for g in grants] == [True, True, False]
    assert await local.live_processes() == 1


async def test_local_buckets_settle_answers_before_reserving() -> None:
    """A reserve carrying an answer observes it first: the level it taught is granted."""
    local = LocalBuckets(pause_jitter=0.0)
    probe = await local.reserve("get", now=T0)
    assert probe.ticket is not None
    answer = Settlement(probe.ticket, Observation(200, 3, 1, None, 1.0))
    grants = [
        await local.reserve("get", now=T0, settle=[answer] if i == 0 else ()) for i in range(3)
    ]
    assert [g.granted for g in grants] == [True, False, False]


async def test_local_buckets_429_pause() -> None:
    """A 429 observed in process pauses the bucket until Retry-After."""
    local = LocalBuckets(pause_jitter=0.0)
    grant = await local.reserve("get", now=T0)
    await local.observe("get", grant.ticket, Observation(429, None, None, 2.0), now=T0)
    held = await local.reserve("get", now=T0 + 0.5)
    assert not held.granted
    assert held.wait == pytest.approx(1.5)


async def test_a_lower_only_share_is_lowered_by_answers_but_never_raised() -> None:
    """A process's share while Redis is away: answers of other processes' requests may
    show more tokens than this share holds, which it must not take; fewer lower it."""
    share = LocalBuckets(pause_jitter=0.0, lower_only=True)
    probe = await share.reserve("get", now=T0)
    await share.observe("get", probe.ticket, Observation(200, 10, 0, None, 1.0), now=T0)
    grant = await share.reserve("get", now=T0 + 1.5)  # one token refilled
    assert grant.granted
    await share.observe("get", grant.ticket, Observation(200, 10, 9, None, 1.0), now=T0 + 1.5)
    assert not (await share.reserve("get", now=T0 + 1.6)).granted  # not raised to 9
    full = LocalBuckets(pause_jitter=0.0, lower_only=True)
    probe = await full.reserve("get", now=T0)
    await full.observe("get", probe.ticket, Observation(200, 10, 5, None, 1.0), now=T0)
    grant = await full.reserve("get", now=T0)
    await full.observe("get", grant.ticket, Observation(200, 10, 0, None, 1.0), now=T0)
    assert not (await full.reserve("get", now=T0)).granted  # lowered from 4 to 0
