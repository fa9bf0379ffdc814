from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurous_async._config import DEFAULT_RETRY, Limits, RetryPolicy, Timeouts
from aurous_async._retry import RetryPlan, is_retryable

NOW = 1_714_752_900.0


class StepClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = NOW

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _plan(*, idempotent: bool = True, **policy: float) -> tuple[RetryPlan, StepClock]:
    clock = StepClock()
    settings = {"jitter": 0.0, "max_attempts": 100, "timeout": 10_000.0, **policy}
    plan = RetryPlan(RetryPolicy(**settings), clock, idempotent=idempotent)  # type: ignore[arg-type]
    return plan, clock


@pytest.mark.parametrize(
    ("kwargs", "idempotent", "expected"),
    [
        ({"connection_error": True}, True, True),
        ({"connection_error": True}, False, False),
        ({"connection_error": True, "maybe_sent": False}, False, True),
        ({"status": 429}, False, True),
        ({"status": 429, "error_code": "concurrency_limit_exceeded"}, True, True),
        ({"status": 500}, True, True),
        ({"status": 502}, True, True),
        ({"status": 503}, True, True),
        ({"status": 504}, True, True),
        ({"status": 599}, True, True),
        ({"status": 503}, False, False),
        ({"status": 408}, True, True),
        ({"status": 409, "error_code": "idempotency_key_in_use"}, True, True),
        ({"status": 409, "error_code": "idempotency_key_in_use"}, False, False),
        ({"status": 409, "error_code": "something_else"}, True, False),
        ({"status": 400, "error_code": "missing_field"}, True, False),
        ({"status": 401}, True, False),
        ({"status": 402, "error_code": "balance_too_low"}, True, False),
        ({"status": 403}, True, False),
        ({"status": 404}, True, False),
        ({"status": 410}, True, False),
        ({"status": 422}, True, False),
    ],
)
def test_is_retryable(kwargs: dict[str, object], idempotent: bool, expected: bool) -> None:
    """Connection errors, 5xx, 408 and 429 retry; other 4xx never; 409 only in flight."""
    assert is_retryable(idempotent=idempotent, **kwargs) is expected  # type: ignore[arg-type]


def test_the_schedule_doubles_from_initial_wait_up_to_max_wait() -> None:
    """Without jitter the waits are 0.5, 1, 2, ... capped at max_wait."""
    plan, _ = _plan(initial_wait=0.5, max_wait=30.0)
    waits = [plan.next_wait(status=503) for _ in range(9)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_retry_after_replaces_the_schedule() -> None:
    """A server-directed wait is used as is, even beyond max_wait."""
    plan, _ = _plan(max_wait=30.0)
    assert plan.next_wait(status=429, retry_after=12.0) == 12.0
    assert plan.next_wait(status=503, retry_after=45.0) == 45.0
    assert plan.next_wait(status=503) == 0.5


def test_jitter_only_lengthens_a_server_directed_wait() -> None:
    """Retry-After plus jitter is never shorter than Retry-After."""
    clock = StepClock()
    policy = RetryPolicy(jitter=1.0, max_attempts=1000, timeout=math.inf)
    plan = RetryPlan(policy, clock, idempotent=True, rng=random.Random(1))
    waits = [plan.next_wait(status=429, retry_after=3.0) for _ in range(200)]
    assert all(w is not None and 3.0 <= w <= 4.0 for w in waits)


def test_the_in_flight_conflict_schedule_is_half_a_second_doubling_to_eight() -> None:
    """409 idempotency_key_in_use waits 0.5 s, 1, 2, 4, then 8 s (contract §7)."""
    plan, _ = _plan()
    waits = [plan.next_wait(status=409, error_code="idempotency_key_in_use") for _ in range(7)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_attempts_are_capped_by_max_attempts() -> None:
    """max_attempts counts the first attempt: 3 allows two retries."""
    plan, _ = _plan(max_attempts=3)
    assert plan.next_wait(connection_error=True) is not None
    assert plan.next_wait(connection_error=True) is not None
    assert plan.next_wait(connection_error=True) is None
    assert plan.failures == 3


def test_a_single_attempt_policy_never_retries() -> None:
    """RetryPolicy(max_attempts=1) switches retries off."""
    plan, _ = _plan(max_attempts=1)
    assert plan.next_wait(status=503) is None


def test_a_wait_past_the_deadline_gives_up() -> None:
    """The deadline covers every attempt and wait: a wait that would cross it is refused."""
    plan, clock = _plan(timeout=10.0)
    assert plan.deadline == NOW + 10.0
    clock.now += 7.0
    assert plan.remaining() == pytest.approx(3.0)
    assert plan.next_wait(status=429, retry_after=5.0) is None
    assert plan.next_wait(status=503) == 0.5
    clock.now += 20.0
    assert plan.remaining() == 0.0
    assert plan.next_wait(status=503) is None


def test_non_retryable_failures_give_up_at_once() -> None:
    """A 400 is final whatever the budget."""
    plan, _ = _plan()
    assert plan.next_wait(status=400, error_code="missing_field") is None


def test_a_non_idempotent_call_retries_only_what_was_never_sent() -> None:
    """Connect refused is retried; a cut connection after sending is not."""
    plan, _ = _plan(idempotent=False)
    assert plan.next_wait(connection_error=True, maybe_sent=False) == 0.5
    assert plan.next_wait(connection_error=True, maybe_sent=True) is None


@given(
    initial=st.floats(0.0, 5.0),
    cap=st.floats(0.0, 60.0),
    jitter=st.floats(0.0, 3.0),
    retry_after=st.none() | st.floats(0.0, 100.0),
    timeout=st.floats(0.1, 500.0),
    seed=st.integers(0, 1000),
)
def test_waits_stay_within_their_bounds(
    initial: float,
    cap: float,
    jitter: float,
    retry_after: float | None,
    timeout: float,
    seed: int,
) -> None:
    """A wait is never negative, never below Retry-After, never past the deadline."""
    clock = StepClock()
    policy = RetryPolicy(
        max_attempts=20, timeout=timeout, initial_wait=initial, max_wait=cap, jitter=jitter
    )
    plan = RetryPlan(policy, clock, idempotent=True, rng=random.Random(seed))
    for _ in range(19):
        wait = plan.next_wait(status=503, retry_after=retry_after)
        if wait is None:
            break
        assert wait >= 0
        assert wait <= plan.remaining()
        if retry_after is not None:
            assert retry_after <= wait <= retry_after + jitter
        else:
            assert wait <= max(cap, 0.0) + 1e-9
        clock.now += wait


def test_defaults_are_the_documented_ones() -> None:
    """The value objects state their defaults in their signatures."""
    assert RetryPolicy(6, 120.0, 0.5, 30.0, 1.0) == DEFAULT_RETRY
    assert Timeouts() == Timeouts(connect=10.0, read=60.0)
    assert Limits() == Limits(100, 0, 30.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RetryPolicy(max_attempts=0),
        lambda: RetryPolicy(timeout=0.0),
        lambda: RetryPolicy(timeout=math.nan),
        lambda: RetryPolicy(jitter=-1.0),
        lambda: Timeouts(read=0.0),
        lambda: Limits(max_connections=-1),
    ],
)
def test_invalid_settings_are_refused(make: object) -> None:
    """Nonsensical settings fail when the value object is made."""
    with pytest.raises(ValueError):  # noqa: PT011
        make()  # type: ignore[operator]
