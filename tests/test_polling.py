"""The shared poll scheduler as pure logic: a fake source, a manual clock, no network."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timezone
from typing import Any

import anyio
import pytest
from _clocks import ManualClock

from aurous_async import Generation, GenerationStatus, NotFoundError, PollPolicy, ServerError
from aurous_async._polling import PollScheduler, Watcher
from aurous_async._waits import Waits

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0


def gen(gid: str, status: str = "processing", created: float = NOW) -> Generation:
    return Generation(
        id=gid,
        status=GenerationStatus(status),
        created_at=datetime.fromtimestamp(created, tz=timezone.utc),
    )


class FakeSource:
    """Generations by id, listed newest first; counts every request."""

    def __init__(self) -> None:
        self.rows: dict[str, Generation] = {}
        self.gets: list[str] = []
        self.pages = 0
        self.limits: list[int] = []
        self.errors: dict[str, Exception] = {}

    def add(self, g: Generation) -> None:
        self.rows[g.id] = g

    async def get(self, generation_id: str) -> tuple[Generation, float | None]:
        self.gets.append(generation_id)
        await anyio.lowlevel.checkpoint()
        if generation_id in self.errors:
            raise self.errors[generation_id]
        if generation_id not in self.rows:
            raise NotFoundError("no such generation", status=404, code="resource_not_found")
        return self.rows[generation_id], None

    async def page(self, cursor: str | None, limit: int) -> tuple[Sequence[Generation], str | None]:
        self.pages += 1
        self.limits.append(limit)
        await anyio.lowlevel.checkpoint()
        ordered = list(reversed(self.rows.values()))
        start = 0 if cursor is None else [g.id for g in ordered].index(cursor) + 1
        chunk = ordered[start : start + limit]
        more = start + limit < len(ordered)
        return chunk, chunk[-1].id if more and chunk else None


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def make(
    policy: PollPolicy | None = None,
) -> tuple[ManualClock, FakeSource, PollScheduler, Waits]:
    clock = ManualClock(NOW)
    source = FakeSource()
    scheduler = PollScheduler(source, clock, policy or PollPolicy())
    waits = Waits(scheduler, requester=None)  # type: ignore[arg-type]
    return clock, source, scheduler, waits


async def advance(clock: ManualClock, seconds: float, step: float = 0.25) -> None:
    """Move time forward in small steps, letting the driver run at each."""
    moved = 0.0
    while moved < seconds - 1e-9:
        clock.advance(step)
        moved += step
        await settle()


@pytest.mark.parametrize(
    ("age", "interval"),
    [(0.0, 1.0), (10.0, 2.5), (30.0, 5.5), (60.0, 8.0), (3600.0, 8.0), (-5.0, 1.0)],
)
def test_interval_grows_with_age_and_is_bounded(age: float, interval: float) -> None:
    """A job's poll interval starts at min_interval, grows with age, and stops at the cap."""
    assert PollPolicy().interval(age) == pytest.approx(interval)


def test_policy_rejects_nonsense() -> None:
    """Inverted intervals or a zero budget share are refused up front."""
    with pytest.raises(ValueError, match="min_interval"):
        PollPolicy(min_interval=5, max_interval=1)
    with pytest.raises(ValueError, match="budget_share"):
        PollPolicy(budget_share=0)


async def test_one_job_is_polled_on_its_schedule_and_the_driver_stops() -> None:
    """A lone young job is polled about once a second; the driver ends with its last waiter."""
    clock, source, scheduler, waits = make()
    source.add(gen("img_1"))
    done: list[Generation] = []

    async def waiter() -> None:
        done.append(await waits.wait(gen("img_1")))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await settle()
        assert scheduler.running
        await advance(clock, 5.0)
        assert 3 <= len(source.gets) <= 5
        source.add(gen("img_1", "succeeded"))
        await advance(clock, 3.0)
    assert done[0].status is GenerationStatus.SUCCEEDED
    await settle()
    assert not scheduler.running
    assert scheduler.watched == 0


async def test_many_waiting_jobs_are_refreshed_by_list_sweeps() -> None:
    """With 500 waiting jobs a sweep refreshes 100 per GET instead of one."""
    clock, source, scheduler, waits = make()
    jobs = [gen(f"img_{i:04d}", created=NOW - i) for i in range(500)]
    for job in reversed(jobs):
        source.add(job)
    results: list[Generation] = []

    async def consume() -> None:
        async for done in waits.as_completed(jobs):
            results.append(done)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await advance(clock, 3.0)
        for job in jobs:
            source.add(gen(job.id, "succeeded", created=job.created_at.timestamp()))
        await advance(clock, 5.0)
    assert len(results) == 500
    requests = len(source.gets) + source.pages
    assert scheduler.stats["sweeps"] >= 1
    # Polling each job alone would take 500+ GETs for the first refresh alone.
    assert requests < 100


async def test_polls_never_outrun_the_budget() -> None:
    """Single polls stay within burst + budget_share x refill x elapsed time."""
    policy = PollPolicy(burst=5, min_interval=1.0, max_interval=1.0, page_size=1)
    clock, source, _scheduler, waits = make(policy)
    jobs = [gen(f"img_{i}") for i in range(50)]
    for job in jobs:
        source.add(job)
    async with anyio.create_task_group() as tg:
        for job in jobs:
            tg.start_soon(waits.wait, job.id)
        await advance(clock, 10.0)
        requests = len(source.gets) + source.pages
        assert requests <= 5 + 0.8 * 10.0 * 10.0 + 1
        tg.cancel_scope.cancel()


async def test_a_missing_job_fails_its_wait_with_its_id() -> None:
    """A 404 ends the wait at once with the error, carrying the generation id."""
    _clock, source, _scheduler, waits = make()
    with pytest.raises(NotFoundError) as info:
        await waits.wait("img_gone")
    assert info.value.generation_id == "img_gone"
    assert source.gets == ["img_gone"]


async def test_transient_poll_errors_are_retried_then_surface() -> None:
    """5xx polls are retried on the schedule; max_failures in a row fail the wait."""
    clock, source, _scheduler, waits = make(PollPolicy(max_failures=3))
    source.add(gen("img_1"))
    source.errors["img_1"] = ServerError("boom", status=503)
    errors: list[BaseException] = []

    async def waiter() -> None:
        try:
            await waits.wait("img_1")
        except ServerError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await advance(clock, 10.0)
    assert len(source.gets) == 3
    assert isinstance(errors[0], ServerError)


async def test_a_pushed_snapshot_resolves_without_a_poll() -> None:
    """A webhook push delivers at once; with webhooks on, jobs poll at the safety interval."""
    clock, source, scheduler, waits = make(PollPolicy(webhook_interval=30.0))
    scheduler.webhooks = True
    source.add(gen("img_1"))
    done: list[Generation] = []

    async def waiter() -> None:
        done.append(await waits.wait(gen("img_1")))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await advance(clock, 20.0, step=1.0)
        assert source.gets == []
        scheduler.push(gen("img_1", "succeeded"))
        await settle()
    assert done[0].status is GenerationStatus.SUCCEEDED
    assert source.gets == []


async def test_a_push_before_the_wait_is_remembered() -> None:
    """A terminal event that beats the wait resolves it without any request."""
    _clock, source, scheduler, waits = make()
    scheduler.push(gen("img_1", "failed"))
    final = await waits.wait("img_1")
    assert final.status is GenerationStatus.FAILED
    assert source.gets == []


async def test_timeout_is_measured_on_the_injected_clock() -> None:
    """wait_for raises at its deadline on the scheduler's clock, with the last snapshot."""
    from aurous_async import WaitTimeoutError

    clock, source, _scheduler, waits = make()
    source.add(gen("img_1"))
    errors: list[WaitTimeoutError] = []

    async def waiter() -> None:
        try:
            await waits.wait(gen("img_1", "queued"), timeout=5.0)
        except WaitTimeoutError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await advance(clock, 4.5)
        assert errors == []
        await advance(clock, 1.0)
    assert errors[0].generation_id == "img_1"
    last = errors[0].last
    assert last is not None
    assert last.status is GenerationStatus.PROCESSING
    assert isinstance(errors[0], TimeoutError)


async def test_waiters_of_one_job_share_its_polls() -> None:
    """Ten waiters on one id cost the polls of one."""
    clock, source, scheduler, waits = make()
    source.add(gen("img_1"))
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(waits.wait, "img_1")
        await advance(clock, 3.0)
        assert scheduler.watched == 1
        assert len(source.gets) <= 4
        source.add(gen("img_1", "succeeded"))
        await advance(clock, 3.0)
    assert scheduler.watched == 0


async def test_a_closed_scheduler_refuses_new_waits() -> None:
    """After aclose the driver is gone and watch() refuses."""
    _clock, _source, scheduler, _waits = make()
    await scheduler.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        scheduler.watch("img_1", Watcher())


async def test_a_job_unwatched_during_its_poll_is_not_polled_again() -> None:
    """A poll that returns after the last waiter left does not reschedule the job."""
    clock, source, _scheduler, waits = make()
    source.add(gen("img_1"))
    source.add(gen("img_2"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(waits.wait, "img_2")
        with anyio.move_on_after(0):
            await waits.wait("img_1")
        await advance(clock, 10.0)
        tg.cancel_scope.cancel()
    assert source.gets.count("img_1") <= 1


def watch_all(
    clock: ManualClock, source: FakeSource, waits: Waits, jobs: list[Generation]
) -> tuple[dict[str, float], Callable[[], Coroutine[Any, Any, None]]]:
    """Put ``jobs`` on the source (oldest first); a task body recording when each one
    comes out of ``as_completed``, and the record."""
    for job in reversed(jobs):
        source.add(job)
    seen: dict[str, float] = {}

    async def consume() -> None:
        async for done in waits.as_completed(jobs):
            seen[done.id] = clock.now

    return seen, consume


async def test_sweeps_slow_down_instead_of_stopping_as_a_batch_thins() -> None:
    """Three old jobs are swept every 8/3 s, never costing more GETs than polling each alone."""
    clock, source, scheduler, waits = make()
    jobs = [gen(f"img_{i}", created=NOW - 120 - i) for i in range(3)]
    seen, consume = watch_all(clock, source, waits, jobs)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await advance(clock, 0.5)
        source.add(gen("img_0", "succeeded", created=NOW - 120))
        # Alone, each 2-minute-old job is polled every max_interval (8 s).
        await advance(clock, 3.0)
        assert seen.get("img_0", math.inf) - NOW <= 8 / 3 + 0.5
        await advance(clock, 36.5)
        requests = len(source.gets) + source.pages
        assert requests <= 3 * 40 / 8 + 1
        assert scheduler.stats["sweeps"] >= 10
        for job in jobs[1:]:
            source.add(gen(job.id, "succeeded", created=job.created_at.timestamp()))
        await advance(clock, 8.0)
    assert set(seen) == {"img_0", "img_1", "img_2"}


async def test_a_job_left_alone_after_sweeps_is_polled_within_its_interval() -> None:
    """When sweeps stop, the last job's own poll comes within its interval of its last refresh."""
    clock, source, scheduler, waits = make()
    jobs = [gen(f"img_{i}", created=NOW - 120 - i) for i in range(2)]
    seen, consume = watch_all(clock, source, waits, jobs)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await advance(clock, 0.25)
        assert scheduler.stats["sweeps"] == 1
        source.add(gen("img_0", "succeeded", created=NOW - 120))
        await advance(clock, 4.5)
        assert "img_0" in seen
        last_sweep = seen["img_0"]
        source.add(gen("img_1", "succeeded", created=NOW - 121))
        await advance(clock, 12.0)
    assert seen["img_1"] <= last_sweep + 8.0 + 0.5


async def test_sweeps_ask_for_the_rows_they_need_not_whole_pages() -> None:
    """After a first full page, a sweep asks for the rows its jobs span plus a margin."""
    clock, source, scheduler, waits = make()
    for i in range(300):
        source.add(gen(f"img_old_{i:03d}", "succeeded", created=NOW - 1000 + i))
    jobs = [gen(f"img_{i:02d}", created=NOW - 30 + i) for i in range(30)]
    for job in jobs:
        source.add(job)
    async with anyio.create_task_group() as tg:
        for job in jobs:
            tg.start_soon(waits.wait, job)
        await advance(clock, 3.5)
        tg.cancel_scope.cancel()
    assert scheduler.stats["sweeps"] >= 3
    assert source.limits[0] == 100
    assert set(source.limits[1:]) == {30 + 10}
