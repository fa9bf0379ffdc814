from __future__ import annotations

import random
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from _clocks import ManualClock, SteppingClock
from hypothesis import given, settings
from hypothesis import strategies as st

from aurous_async._clock import ScaledClock
from aurous_async._ratelimit import (
    DOCUMENTED_BUCKETS,
    UNMETERED,
    BucketSpec,
    Governor,
    RateLimit,
    bucket_for,
    get_header,
    parse_retry_after,
)
from aurous_async.testing._ratelimit import TokenBucket
from aurous_async.testing._settings import BucketSpec as ServerSpec

NOW = 1_714_752_900.0


# --- header parsing ----------------------------------------------------------------------


def test_from_headers_reads_the_documented_trio() -> None:
    """The X-RateLimit trio and Retry-After of a 429 become one RateLimit."""
    headers = {
        "X-RateLimit-Limit": "120",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1714752912",
        "Retry-After": "12",
    }
    assert RateLimit.from_headers(headers, now=NOW) == RateLimit(120, 0, 1714752912.0, 12.0)


def test_from_headers_reads_unprefixed_names_case_insensitively() -> None:
    """IETF-style RateLimit-* names are read too, whatever their case."""
    headers = {"ratelimit-limit": "1200", "RATELIMIT-REMAINING": "1199", "RateLimit-Reset": "5"}
    parsed = RateLimit.from_headers(headers, now=NOW)
    assert parsed == RateLimit(1200, 1199, NOW + 5, None)


def test_from_headers_prefers_the_prefixed_names() -> None:
    """When both spellings are present, X-RateLimit-* wins."""
    headers = {"X-RateLimit-Remaining": "7", "RateLimit-Remaining": "9"}
    parsed = RateLimit.from_headers(headers)
    assert parsed is not None
    assert parsed.remaining == 7


def test_from_headers_takes_the_first_item_of_a_list_value() -> None:
    """A draft-style "120, 120;w=60" value reads as 120."""
    parsed = RateLimit.from_headers({"RateLimit-Limit": "120, 120;w=60"})
    assert parsed is not None
    assert parsed.limit == 120


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Content-Type": "application/json"},
        {"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "-3"},
        {"X-RateLimit-Reset": "nan", "Retry-After": "soon"},
        {"X-RateLimit-Limit": "inf", "X-RateLimit-Remaining": "2.5"},
    ],
)
def test_from_headers_without_usable_values_is_none(headers: dict[str, str]) -> None:
    """Missing or garbage values give None rather than an error."""
    assert RateLimit.from_headers(headers, now=NOW) is None


def test_from_headers_ignores_garbage_values_one_by_one() -> None:
    """One bad header does not discard the good ones."""
    headers = {"X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "x", "Retry-After": "-1"}
    assert RateLimit.from_headers(headers, now=NOW) == RateLimit(limit=120)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (format_datetime(datetime.fromtimestamp(NOW + 30, timezone.utc), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(NOW - 30, timezone.utc), usegmt=True), 0.0),
        ("-5", None),
        ("", None),
        ("tomorrow", None),
        ("Wed, 99 Foo 2015 07:28:00 GMT", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After is delta seconds or an HTTP-date; anything else is None."""
    assert parse_retry_after(value, now=NOW) == expected


def test_get_header_matches_case_insensitively() -> None:
    """A plain dict is searched without regard to case."""
    assert get_header({"aurous-request-id": "req_1"}, "Aurous-Request-Id") == "req_1"
    assert get_header({}, "Aurous-Request-Id") is None


_header_text = st.text(st.characters(codec="utf-8"), max_size=30)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "X-RateLimit-Limit",
                "x-ratelimit-remaining",
                "X-RateLimit-Reset",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
                "Other",
            ]
        ),
        _header_text,
    )
)
def test_from_headers_never_raises(headers: dict[str, str]) -> None:
    """Arbitrary header text is parsed or ignored, never raised on."""
    parsed = RateLimit.from_headers(headers, now=NOW)
    if parsed is not None:
        assert parsed.limit is None or parsed.limit >= 0
        assert parsed.remaining is None or parsed.remaining >= 0
        assert parsed.retry_after is None or parsed.retry_after >= 0


@given(
    limit=st.integers(0, 10**9),
    remaining=st.integers(0, 10**9),
    reset=st.integers(10**9, 4 * 10**9),
    retry_after=st.integers(0, 10**6),
)
def test_from_headers_round_trips_integers(
    limit: int, remaining: int, reset: int, retry_after: int
) -> None:
    """Well-formed integer headers come back exactly."""
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
        "Retry-After": str(retry_after),
    }
    assert RateLimit.from_headers(headers) == RateLimit(limit, remaining, reset, retry_after)


# --- buckets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "synthesize", "bucket"),
    [
        ("GET", "/v1/balance", False, "get"),
        ("GET", "/v1/images?limit=5", False, "get"),
        ("GET", "/v1/images/img_x", False, "get"),
        ("get", "/v1/video_loras/seedance", False, "get"),
        ("GET", "/v1/images/img_x/output/0", False, UNMETERED),
        ("GET", "/v1/videos/vid_x/output", False, UNMETERED),
        ("GET", "/v1/characters", False, "characters_get"),
        ("GET", "/v1/characters/char_x", False, "characters_get"),
        ("POST", "/v1/images", False, "images_post"),
        ("POST", "/v1/videos", False, "images_post"),
        ("POST", "/v1/images/img_x/cancel", False, "images_post"),
        ("POST", "/v1/images/vid_x/cancel", False, "images_post"),
        ("POST", "/v1/images/estimate", False, "estimate_post"),
        ("POST", "/v1/videos/estimate", False, "estimate_post"),
        ("POST", "/v1/files", False, "files"),
        ("DELETE", "/v1/files/file_x", False, "default"),
        ("POST", "/v1/webhook_endpoints", False, "webhook_endpoints"),
        ("POST", "/v1/webhook_endpoints/we_x/test", False, "webhooks_test"),
        ("POST", "/v1/webhook_endpoints/we_x/rotate_secret", False, "default"),
        ("DELETE", "/v1/webhook_endpoints/we_x", False, "default"),
        ("POST", "/v1/characters/uploads/init", False, "characters_post"),
        ("POST", "/v1/characters/uploads/classify", False, "characters_post"),
        ("POST", "/v1/characters", False, "characters_post"),
        ("POST", "/v1/characters", True, "characters_synthesize"),
        ("PATCH", "/v1/characters/char_x", False, "characters_post"),
        ("DELETE", "/v1/characters/char_x", False, "characters_post"),
        ("POST", "/v1/characters/char_x/save", False, "characters_post"),
        ("POST", "/v1/characters/char_x/refs/regenerate", False, "characters_synthesize"),
        ("POST", "/v1/characters/char_x/resynthesize", False, "characters_synthesize"),
        ("PUT", "/upload/upl_x?signature=abc", False, UNMETERED),
        ("POST", "/v1/generations", False, "default"),
    ],
)
def test_bucket_for(method: str, path: str, synthesize: bool, bucket: str) -> None:
    """Every route maps to the bucket docs/architecture.md lists."""
    assert bucket_for(method, path, synthesize=synthesize) == bucket


def test_documented_buckets_match_the_contract() -> None:
    """Capacity and refill per second are those of contract §4.1."""
    assert DOCUMENTED_BUCKETS["images_post"] == BucketSpec(120, 1.0)
    assert DOCUMENTED_BUCKETS["get"] == BucketSpec(1200, 10.0)
    assert DOCUMENTED_BUCKETS["characters_synthesize"] == BucketSpec(12, 0.1)


# --- the governor --------------------------------------------------------------------------


async def _burst(gov: Governor, bucket: str, n: int, *, answer: bool = True) -> list[float]:
    """Acquire n permits concurrently; return the grant times in grant order.

    With ``answer``, each permit is observed at once, as if answered without headers.
    """
    times: list[float] = []

    async def one() -> None:
        permit = await gov.acquire(bucket)
        times.append(gov.clock.time())
        if answer:
            gov.observe(bucket, None, 200, permit=permit)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return times


@pytest.mark.anyio
async def test_a_fresh_bucket_grants_its_capacity_then_paces_at_the_refill_rate() -> None:
    """120 images_post grants are immediate; the next ones come one per second."""
    clock = SteppingClock(NOW)
    gov = Governor(clock)
    times = await _burst(gov, "images_post", 123)
    assert times[:120] == pytest.approx([NOW] * 120, abs=0.01)
    assert times[120:] == pytest.approx([NOW + 1, NOW + 2, NOW + 3], abs=0.01)


@pytest.mark.anyio
async def test_waiters_are_served_in_arrival_order() -> None:
    """Tasks queued on an empty bucket are granted first come, first served."""
    clock = SteppingClock(NOW)
    gov = Governor(clock, {"b": BucketSpec(1, 1.0)})
    order: list[int] = []

    async def one(i: int) -> None:
        gov.observe("b", None, 200, permit=await gov.acquire("b"))
        order.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(one, i)
            await anyio.lowlevel.checkpoint()
    assert order == list(range(10))


@pytest.mark.anyio
@pytest.mark.parametrize("cancelled", ["head", "queued"])
async def test_a_cancelled_waiter_takes_nothing_and_the_queue_moves_on(cancelled: str) -> None:
    """Cancelling the sleeping head or a queued waiter leaves the tokens to the others."""
    clock = ManualClock(NOW)
    gov = Governor(clock, {"b": BucketSpec(1, 1.0)})
    gov.observe("b", None, 200, permit=await gov.acquire("b"))
    granted: list[str] = []
    scopes: dict[str, anyio.CancelScope] = {}

    async def one(name: str) -> None:
        with anyio.CancelScope() as scopes[name]:
            gov.observe("b", None, 200, permit=await gov.acquire("b"))
            granted.append(name)

    with anyio.fail_after(10):  # real seconds: a hang would be a bug
        await _cancel_one(clock, one, scopes, cancelled)
    survivors = ["second", "third"] if cancelled == "head" else ["first", "third"]
    assert granted == survivors
    assert gov.snapshot()["b"].in_flight == 0


async def _cancel_one(
    clock: ManualClock,
    one: Callable[[str], Coroutine[Any, Any, None]],
    scopes: dict[str, anyio.CancelScope],
    cancelled: str,
) -> None:
    async with anyio.create_task_group() as tg:
        for name in ("first", "second", "third"):
            tg.start_soon(one, name)
            await anyio.wait_all_tasks_blocked()
        scopes["first" if cancelled == "head" else "second"].cancel()
        await anyio.wait_all_tasks_blocked()
        for _ in range(3):
            clock.advance(1.01)
            await anyio.wait_all_tasks_blocked()


@pytest.mark.anyio
async def test_a_request_holds_its_token_until_answered() -> None:
    """A request in flight may be counted as late as its answer, so it holds its token."""
    clock = ManualClock(NOW)
    gov = Governor(clock, {"b": BucketSpec(1, 1.0)}, in_flight_ttl=30.0)
    permit = await gov.acquire("b")
    clock.advance(10.0)
    assert gov.snapshot()["b"].remaining == 0
    gov.observe("b", None, None, permit=permit)
    assert gov.snapshot()["b"].remaining == 0
    clock.advance(1.01)
    assert gov.snapshot()["b"].remaining == 1


@pytest.mark.anyio
async def test_a_permit_never_observed_is_forgotten_after_its_ttl() -> None:
    """A leaked permit stops holding its token once in_flight_ttl has passed."""
    clock = ManualClock(NOW)
    gov = Governor(clock, {"b": BucketSpec(1, 1.0)}, in_flight_ttl=30.0)
    await gov.acquire("b")
    clock.advance(31.0)
    assert gov.snapshot()["b"].in_flight == 1
    with anyio.fail_after(10):  # real seconds: a hang would be a bug
        async with anyio.create_task_group() as tg:
            tg.start_soon(gov.acquire, "b")
            await anyio.wait_all_tasks_blocked()
            clock.advance(1.01)
    assert gov.snapshot()["b"].in_flight == 1


@pytest.mark.anyio
async def test_unmetered_requests_never_wait() -> None:
    """The unmetered pseudo-bucket grants at once and keeps no state."""
    gov = Governor(SteppingClock(NOW))
    for _ in range(1000):
        permit = await gov.acquire(UNMETERED)
        gov.observe(UNMETERED, None, 200, permit=permit)
    assert gov.snapshot() == {}


@pytest.mark.anyio
async def test_a_429_pauses_the_whole_bucket_until_retry_after_plus_jitter() -> None:
    """No grant happens before Retry-After has passed; jitter only adds."""
    clock = SteppingClock(NOW)
    gov = Governor(clock, pause_jitter=0.5, rng=random.Random(7))
    permit = await gov.acquire("images_post")
    gov.observe(
        "images_post",
        RateLimit(limit=120, remaining=0, reset_at=NOW + 120, retry_after=12.0),
        429,
        permit=permit,
    )
    paused_until = gov.snapshot()["images_post"].paused_until
    assert paused_until is not None
    assert NOW + 12 <= paused_until <= NOW + 12.5
    await gov.acquire("images_post")
    assert clock.now >= paused_until


@pytest.mark.anyio
async def test_a_429_without_retry_after_pauses_one_second() -> None:
    """A bare 429 still pauses the bucket, for one second plus jitter."""
    clock = SteppingClock(NOW)
    gov = Governor(clock, pause_jitter=0.0)
    permit = await gov.acquire("files")
    gov.observe("files", None, 429, permit=permit)
    assert gov.snapshot()["files"].paused_until == pytest.approx(NOW + 1)


@pytest.mark.anyio
async def test_the_model_is_cut_when_the_server_holds_fewer_tokens() -> None:
    """Another consumer of the team's bucket shows in Remaining; the model follows it."""
    clock = SteppingClock(NOW)
    gov = Governor(clock)
    permit = await gov.acquire("images_post")
    gov.observe(
        "images_post", RateLimit(limit=120, remaining=5, reset_at=NOW + 115), 201, permit=permit
    )
    state = gov.snapshot()["images_post"]
    assert state.remaining == 5
    assert state.in_flight == 0


@pytest.mark.anyio
async def test_a_larger_capacity_is_learned_from_limit() -> None:
    """A higher tier's Limit raises the capacity, and the tokens to what the server holds."""
    gov = Governor(SteppingClock(NOW))
    permit = await gov.acquire("images_post")
    gov.observe(
        "images_post", RateLimit(limit=240, remaining=239, reset_at=NOW + 1), 201, permit=permit
    )
    state = gov.snapshot()["images_post"]
    assert state.limit == 240
    assert state.remaining == 239


async def _answer_probe(gov: Governor, bucket: str, rate_limit: RateLimit) -> None:
    """Send a bucket's first request and answer it, so that requests may overlap."""
    gov.observe(bucket, rate_limit, 200, permit=await gov.acquire(bucket))


@pytest.mark.anyio
async def test_headers_are_stale_by_the_requests_in_flight() -> None:
    """Remaining is reduced by every other request that may not have been counted yet."""
    gov = Governor(SteppingClock(NOW))
    await _answer_probe(gov, "images_post", RateLimit(120, 119, NOW + 1))
    permits = [await gov.acquire("images_post") for _ in range(119)]
    gov.observe(
        "images_post", RateLimit(limit=240, remaining=239, reset_at=NOW + 1), 201, permit=permits[0]
    )
    state = gov.snapshot()["images_post"]
    assert state.remaining == 121
    assert state.in_flight == 118


@pytest.mark.anyio
@pytest.mark.parametrize("bucket", ["images_post", "brand_new"])
async def test_a_bucket_sends_one_request_until_its_first_answer(bucket: str) -> None:
    """Before a bucket's first answer only one request of it is in flight; the answer
    (capacity and level) lets the queue go on at once."""
    clock = ManualClock(NOW)
    gov = Governor(clock)
    probe = await gov.acquire(bucket)
    granted: list[int] = []

    async def one(i: int) -> None:
        await gov.acquire(bucket)
        granted.append(i)

    with anyio.fail_after(10):  # real seconds: a hang would be a bug
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(one, i)
            await anyio.wait_all_tasks_blocked()
            assert granted == []
            assert gov.snapshot()[bucket].queued == 5
            gov.observe(bucket, RateLimit(30, 29, NOW + 1), 200, permit=probe)
    assert granted == [0, 1, 2, 3, 4]
    state = gov.snapshot()[bucket]
    assert (state.limit, state.remaining, state.in_flight, state.queued) == (30, 24, 5, 0)


@pytest.mark.anyio
async def test_an_unknown_bucket_is_learned_from_its_headers() -> None:
    """A bucket the SDK does not know is learned from Limit, Remaining and Reset."""
    clock = SteppingClock(NOW)
    gov = Governor(clock)
    await _answer_probe(gov, "brand_new", RateLimit(30, 29, NOW + 2))
    permits = [await gov.acquire("brand_new") for _ in range(5)]
    assert clock.now == NOW
    for permit in permits:
        gov.observe("brand_new", RateLimit(30, 0, NOW + 60), 200, permit=permit)
    state = gov.snapshot()["brand_new"]
    assert state.limit == 30
    assert state.remaining == 0
    # Reset proves 29/60 <= rate < 30/59: the middle is reported, the floor paces.
    assert state.refill_per_second == pytest.approx((29 / 60 + 30 / 59) / 2)
    assert gov._buckets["brand_new"].rate == pytest.approx(29 / 60)


def test_snapshot_is_empty_before_any_request() -> None:
    """Only buckets that were used appear in the snapshot."""
    assert Governor(SteppingClock(NOW)).snapshot() == {}


@pytest.mark.anyio
async def test_snapshot_describes_the_local_model() -> None:
    """Limit, remaining, reset, pause and in-flight count are reported per bucket."""
    clock = SteppingClock(NOW)
    gov = Governor(clock)
    await _answer_probe(gov, "estimate_post", RateLimit(240, 239, NOW + 1))
    await _burst(gov, "estimate_post", 40, answer=False)
    state = gov.snapshot()["estimate_post"]
    assert state.bucket == "estimate_post"
    assert state.limit == 240
    assert state.remaining == 199
    assert state.in_flight == 40
    assert state.queued == 0
    assert state.reset_at == pytest.approx(NOW + 20.5)
    assert state.paused_until is None
    assert state.refill_per_second == 2.0


# --- simulated fan-outs against the emulator's own bucket arithmetic --------------------


async def _fan_out(
    *,
    n: int,
    seed: int,
    predrain: int = 0,
    pass_permit: bool = True,
    max_ticks: int = 20,
) -> tuple[int, int, float]:
    """Run n concurrent requests against a simulated server; count 429s and time used.

    Each request waits a random number of event-loop ticks before and after the server
    counts it, so requests overtake each other and responses arrive out of order.
    Returns (all 429s, 429s of requests granted after a 429 was observed, seconds from
    the first answer, which the others wait for, to the last).
    """
    rng = random.Random(seed)
    clock = SteppingClock(NOW)
    gov = Governor(clock, rng=random.Random(seed))
    server = TokenBucket(ServerSpec(120, 60), clock.time())
    for _ in range(predrain):
        server.take(clock.time())
    observed = 0
    first_answer_at: float | None = None
    first_429: int | None = None
    refused = late = 0

    async def one() -> None:
        nonlocal observed, first_answer_at, first_429, refused, late
        permit = await gov.acquire("images_post")
        seen_at_grant = observed
        for _ in range(rng.randint(0, max_ticks)):
            await anyio.lowlevel.checkpoint()
        decision = server.take(clock.time())
        for _ in range(rng.randint(0, max_ticks)):
            await anyio.lowlevel.checkpoint()
        status = 201 if decision.allowed else 429
        observed += 1
        if first_answer_at is None:
            first_answer_at = clock.now
        if status == 429:
            refused += 1
            if first_429 is None:
                first_429 = observed
            elif seen_at_grant >= first_429:
                late += 1
        gov.observe(
            "images_post",
            RateLimit.from_headers(decision.headers(), now=clock.time()),
            status,
            permit=permit if pass_permit else None,
        )

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    assert first_answer_at is not None
    return refused, late, clock.now - first_answer_at


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("pass_permit", [True, False])
async def test_fan_out_uses_burst_and_refill_fully_without_a_429(
    seed: int, pass_permit: bool
) -> None:
    """500 creates on a fresh images_post bucket: no 429, done in ~(500 - 120) s."""
    refused, _, elapsed = await _fan_out(n=500, seed=seed, pass_permit=pass_permit)
    assert refused == 0
    assert 380 <= elapsed <= 382


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(4))
async def test_fan_out_on_a_drained_bucket_recovers_after_the_first_429(seed: int) -> None:
    """When another process drained the bucket, no request granted after a 429 fails."""
    refused, late, elapsed = await _fan_out(n=300, seed=seed, predrain=100)
    assert late == 0
    # Whatever succeeded was paced at the server's real rate, without idling.
    succeeded = 300 - refused
    assert elapsed <= (succeeded - 20) + 3


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 150),
    capacity=st.integers(1, 20),
    per_minute=st.sampled_from([6.0, 30.0, 60.0, 600.0]),
    max_ticks=st.integers(0, 30),
    seed=st.integers(0, 2**16),
)
def test_no_429_for_any_latency_pattern(
    n: int, capacity: int, per_minute: float, max_ticks: int, seed: int
) -> None:
    """Whatever the bucket and however requests interleave, a lone client sees no 429."""

    async def main() -> int:
        rng = random.Random(seed)
        clock = SteppingClock(NOW)
        gov = Governor(clock, {"b": BucketSpec(capacity, per_minute / 60)})
        server = TokenBucket(ServerSpec(capacity, per_minute), clock.time())
        refused = 0

        async def one() -> None:
            nonlocal refused
            permit = await gov.acquire("b")
            for _ in range(rng.randint(0, max_ticks)):
                await anyio.lowlevel.checkpoint()
            decision = server.take(clock.time())
            for _ in range(rng.randint(0, max_ticks)):
                await anyio.lowlevel.checkpoint()
            refused += not decision.allowed
            status = 200 if decision.allowed else 429
            rate_limit = RateLimit.from_headers(decision.headers(), now=clock.time())
            gov.observe("b", rate_limit, status, permit=permit)

        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
        return refused

    assert anyio.run(main) == 0


@pytest.mark.anyio
async def test_fan_out_on_a_fast_scaled_clock_sees_no_429() -> None:
    """With real concurrency on a 500x clock shared with the server, no 429 happens."""
    clock = ScaledClock(500.0)
    gov = Governor(clock)
    server = TokenBucket(ServerSpec(120, 60), clock.time())
    rng = random.Random(3)
    refused = 0

    async def one() -> None:
        nonlocal refused
        permit = await gov.acquire("images_post")
        await anyio.sleep(rng.uniform(0, 0.002))
        decision = server.take(clock.time())
        await anyio.sleep(rng.uniform(0, 0.002))
        refused += not decision.allowed
        status = 201 if decision.allowed else 429
        rate_limit = RateLimit.from_headers(decision.headers(), now=clock.time())
        gov.observe("images_post", rate_limit, status, permit=permit)

    async with anyio.create_task_group() as tg:
        for _ in range(200):
            tg.start_soon(one)
    # No bound on elapsed time here: at 500x, scheduling jitter of a loaded machine is
    # magnified into scaled seconds. Full use of the bucket is asserted on a fake clock.
    assert refused == 0


def test_retry_after_http_date_defaults_to_the_system_clock() -> None:
    """Without now, an HTTP-date is measured against real time (a past date waits 0)."""
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000", now=0.0) == 1445412480.0


@pytest.mark.anyio
async def test_observing_a_permit_twice_is_harmless() -> None:
    """A second observe of the same permit settles nothing more."""
    gov = Governor(SteppingClock(NOW))
    permit = await gov.acquire("files")
    gov.observe("files", None, 201, permit=permit)
    gov.observe("files", None, 201, permit=permit)
    gov.observe("files", RateLimit(60, 59, NOW + 2), 201)
    state = gov.snapshot()["files"]
    assert state.in_flight == 0
    assert state.remaining == 59


@pytest.mark.parametrize(
    ("rate_limit", "rate"),
    [
        # A larger tier: Reset proves (240 - 100 - 1) / 70 <= rate < (240 - 100) / 69;
        # the middle is reported.
        (RateLimit(240, 100, NOW + 70), (139 / 70 + 140 / 69) / 2),
        # A smaller capacity and no usable Reset: the documented rate, scaled down.
        (RateLimit(60, 59, None), 0.5),
        # The documented capacity, and a Reset the documented rate agrees with.
        (RateLimit(120, 100, NOW + 20), 1.0),
        # The documented capacity, refilled faster: 19 tokens in at most 5 s.
        (RateLimit(120, 100, NOW + 5), (19 / 5 + 20 / 4) / 2),
        # The documented capacity, refilled at half the rate: the bound Reset proves.
        (RateLimit(120, 0, NOW + 240), (119 / 240 + 120 / 239) / 2),
        # An implausible Reset (a full refill 30 years away) teaches nothing.
        (RateLimit(120, 0, 99_999_999_999.0), 1.0),
    ],
)
@pytest.mark.anyio
async def test_the_refill_rate_follows_the_capacity(rate_limit: RateLimit, rate: float) -> None:
    """The documented rate holds while the server's headers allow it; else what they prove."""
    gov = Governor(SteppingClock(NOW))
    permit = await gov.acquire("images_post")
    gov.observe("images_post", rate_limit, 201, permit=permit)
    assert gov.snapshot()["images_post"].refill_per_second == pytest.approx(rate)
