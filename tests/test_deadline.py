"""Call deadlines: one timer per timeout group, asyncio.timeout semantics."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from aurous_async._deadline import Deadlines

pytestmark = pytest.mark.anyio
#: The shared timer and deferred arming need ``Task.uncancel``; 3.10 uses the scope.
needs_timer = pytest.mark.skipif(sys.version_info < (3, 11), reason="needs Task.uncancel")


async def _hang() -> None:
    await asyncio.Event().wait()


async def _assert_no_cancel_pending() -> None:
    """No cancel request is left on the current task (a pending one raises here)."""
    await asyncio.sleep(0)
    if sys.version_info >= (3, 11):
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


@pytest.fixture(params=["timer", "scope"])
def deadlines(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Deadlines:
    """Both mechanisms: the shared loop timer (3.11+) and the anyio scope of Python 3.10,
    switched on here for 3.11+ too."""
    if request.param == "timer" and sys.version_info < (3, 11):
        pytest.skip("needs Task.uncancel")
    if request.param == "scope":
        monkeypatch.setattr("aurous_async._deadline._NATIVE", False)
    return Deadlines()


def _timer_groups(deadlines: Deadlines) -> bool:
    """Whether ``deadlines`` uses timer groups (the scope fallback has none)."""
    return bool(deadlines._groups)


async def test_a_call_past_its_deadline_raises_timeout_error(deadlines: Deadlines) -> None:
    """The block raises TimeoutError (not CancelledError) once its time is up."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError), deadlines.limit(0.02):
        await _hang()
    assert loop.time() - started >= 0.02
    await _assert_no_cancel_pending()


async def test_a_call_within_its_deadline_is_untouched(deadlines: Deadlines) -> None:
    """A block that ends in time returns normally and leaves nothing armed."""
    with deadlines.limit(5.0):
        await asyncio.sleep(0)
    if _timer_groups(deadlines):
        assert not deadlines._groups[5.0].calls
    await asyncio.sleep(0.01)
    await _assert_no_cancel_pending()


async def test_only_expired_calls_of_a_group_are_cancelled() -> None:
    """Calls sharing a timeout share a timer; each is cancelled at its own deadline."""
    deadlines = Deadlines()
    outcomes: dict[str, str] = {}

    async def call(name: str, work: float) -> None:
        try:
            with deadlines.limit(0.05):
                await asyncio.sleep(work)
            outcomes[name] = "done"
        except TimeoutError:
            outcomes[name] = "timeout"

    first = asyncio.create_task(call("slow-first", 1.0))
    await asyncio.sleep(0.03)
    # Starts 30 ms later, so its deadline is 30 ms later than the first one's.
    second = asyncio.create_task(call("quick-second", 0.04))
    third = asyncio.create_task(call("slow-third", 1.0))
    await asyncio.gather(first, second, third)
    assert outcomes == {"slow-first": "timeout", "quick-second": "done", "slow-third": "timeout"}
    if sys.version_info >= (3, 11):
        assert not deadlines._groups[0.05].calls
        assert deadlines._groups[0.05].timer is None


@pytest.mark.parametrize("deferred", [False, True], ids=["armed", "deferred-then-armed"])
async def test_an_outside_cancellation_is_not_a_timeout(
    deadlines: Deadlines, deferred: bool
) -> None:
    """Cancelling the task from elsewhere propagates CancelledError untouched."""

    async def call() -> None:
        with deadlines.limit(5.0, deferred=deferred) as deadline:
            deadline.arm()
            await _hang()

    task = asyncio.create_task(call())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if _timer_groups(deadlines):
        assert not deadlines._groups[5.0].calls


@needs_timer
async def test_an_outside_cancellation_racing_the_deadline_wins() -> None:
    """When both fire, the outer cancel is not swallowed into a timeout."""
    deadlines = Deadlines()
    entered = asyncio.Event()

    async def call() -> None:
        with deadlines.limit(0.01):
            entered.set()
            await _hang()

    task = asyncio.create_task(call())
    await entered.wait()
    time.sleep(0.02)  # noqa: ASYNC251 - the deadline passes without the loop getting a turn
    # What the group's timer does, and an outer cancel, in the same loop iteration.
    deadlines._groups[0.01].expire()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_timeout_inside_anothers_limit_stays_local(deadlines: Deadlines) -> None:
    """Nested limits: the inner one expiring does not end the outer block."""
    with deadlines.limit(5.0):
        with pytest.raises(TimeoutError), deadlines.limit(0.01):
            await _hang()
        await asyncio.sleep(0)  # the outer block goes on
    await _assert_no_cancel_pending()


@needs_timer
async def test_a_fresh_timeout_per_call_does_not_grow_without_bound() -> None:
    """Idle groups are dropped once many distinct timeouts have been used."""
    deadlines = Deadlines()
    for i in range(500):
        with deadlines.limit(10.0 + i / 1000):
            await asyncio.sleep(0)
    assert len(deadlines._groups) <= 33
    # A call still in flight keeps its group.
    with deadlines.limit(99.0):
        for i in range(100):
            with deadlines.limit(20.0 + i / 1000):
                pass
        assert 99.0 in deadlines._groups


@needs_timer
async def test_a_deferred_deadline_is_not_armed_until_asked() -> None:
    """Deferred: nothing fires on its own; armed after its end, it fires at once."""
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    armed_at = 0.0

    async def call() -> None:
        nonlocal armed_at
        with deadlines.limit(0.01, deferred=True) as deadline:
            await asyncio.sleep(0.03)  # past its end, unarmed: untouched
            assert not deadlines._groups  # no group, no shared timer
            armed_at = loop.time()
            deadline.arm()
            await _hang()

    with pytest.raises(TimeoutError):
        await call()
    assert loop.time() - armed_at < 0.02


async def test_an_armed_deferred_deadline_keeps_its_original_end() -> None:
    """Armed late, it ends where it would have ended armed on entry, not later."""
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def call() -> None:
        with deadlines.limit(0.08, deferred=True) as deadline:
            await asyncio.sleep(0.04)
            deadline.arm()
            deadline.arm()  # idempotent
            await _hang()

    with pytest.raises(TimeoutError):
        await call()
    assert 0.08 <= loop.time() - started < 0.115
    await _assert_no_cancel_pending()


async def test_a_deferred_deadline_ending_in_time_leaves_nothing_armed() -> None:
    """A block that ends before its armed deadline cancels its timer on the way out."""
    deadlines = Deadlines()
    with deadlines.limit(0.02, deferred=True) as deadline:
        deadline.arm()
    await asyncio.sleep(0.04)
    await _assert_no_cancel_pending()


@needs_timer
async def test_a_deferred_deadline_takes_its_start_from_the_loop_it_is_given() -> None:
    """The caller's loop spares a running-loop lookup; only its time is read, and the
    deadline is armed on the running loop."""

    class Stopped:  # a loop whose clock stands at 100 s; nothing may be scheduled on it
        def time(self) -> float:
            return 100.0

    deadlines = Deadlines()
    running = asyncio.get_running_loop()
    with deadlines.limit(2.5, deferred=True, loop=Stopped()) as deadline:  # type: ignore[arg-type]
        assert deadline.when == 102.5
    armed_at = running.time()

    async def call() -> None:
        with deadlines.limit(0.01, deferred=True, loop=running) as deadline:
            deadline.arm()
            await _hang()

    with pytest.raises(TimeoutError):
        await call()
    assert running.time() - armed_at < 0.05
    await _assert_no_cancel_pending()


@pytest.mark.parametrize("start", ["armed", "deferred", "deferred-then-armed"])
async def test_a_paused_deadline_does_not_count_the_pause(deadlines: Deadlines, start: str) -> None:
    """Time between pause() and resume() is not counted; the time left before is kept."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    lefts: list[float | None] = []

    async def paused_call() -> None:
        with deadlines.limit(0.05, deferred=start != "armed") as deadline:
            if start == "deferred-then-armed":
                deadline.arm()
            lefts.append(deadline.pause())
            await asyncio.sleep(0.1)  # past the deadline, were it running
            deadline.resume(lefts[0])
            deadline.arm()
            await _hang()

    with pytest.raises(TimeoutError):
        await paused_call()
    assert lefts[0] is not None
    assert 0 < lefts[0] <= 0.05
    assert loop.time() - started >= 0.15
    await _assert_no_cancel_pending()
