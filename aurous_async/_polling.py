"""One poll scheduler per client: every wait, ``wait_for`` and ``as_completed`` shares it.

It knows nothing about HTTP: a ``PollSource`` fetches one generation or one list page.
Waiters register a ``Watcher`` on a ``_Job`` (one per generation id, shared by all its
waiters); the scheduler keeps a heap of jobs keyed by their next poll time and a heap of
waiter deadlines, and one driver task (started on the first watch, gone when nothing is
watched) does all the polling on the injected clock. No task and no sleep per waiter.

How it spends the GET bucket (contract §4.1: 1200 burst, 600/min):

* A local token bucket paces polls at ``budget_share`` of the bucket's refill (the rest
  is left to the caller's other GETs); the client's governor still paces every request.
* Each job has an interval that grows with its age, from ``min_interval`` to
  ``max_interval`` (contract §8.1: most images finish in 10-30 s, poll ~2 s with light
  backoff). A server hint (``Retry-After`` on a 2xx poll) replaces it, bounded.
* Per-job polls (``GET /v1/images/{id}``) refresh one job per token; a list sweep
  (``GET /v1/images``, newest first, 100 rows a page) refreshes up to 100. A sweep never
  spends more than polling each job alone would: its period is at least its pages over
  the per-job demand (the sum of 1/interval over waiting jobs), so as the jobs age and
  their own intervals grow, sweeps slow down instead of stopping. Sweeps are chosen
  while that refreshes the average job at least as often as its own polls would (at
  least as many waiting jobs as pages). A sweep walks from the newest row down to the
  oldest waiting job (or until it saw them all); a job it does not cover keeps its own
  schedule and is polled alone, and when sweeps stop every job is polled again within
  its own interval of its last refresh.
* Webhooks (``push``) resolve a job at once; while webhooks are attached every job
  polls only at the slow ``webhook_interval``, as a safety net.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Sequence
from typing import Protocol

import anyio
import anyio.abc
import attrs

from ._clock import Clock
from ._errors import APIStatusError, AurousError, EventLoopMismatchError
from .models import Generation

__all__ = ["DEFAULT_POLLING", "PollPolicy", "PollScheduler", "PollSource", "Watcher"]

logger = logging.getLogger("aurous_async")


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How the client's shared poll scheduler spends the GET budget.

    Args:
        min_interval: seconds between polls of a young job (and the fastest sweep).
        max_interval: the longest gap between polls of one job, however old.
        age_factor: the interval grows by this many seconds per second of job age.
        webhook_interval: the safety poll interval while webhooks are attached.
        budget_share: the fraction of the GET bucket's refill polling may plan to use.
        burst: how many polls may go out back to back before the budget paces them.
        page_size: rows per list page in a sweep (1-100).
        max_in_flight: poll requests in flight at once.
        max_failures: consecutive transient poll failures before a job's wait fails.
        request_timeout: the deadline of one poll request, retries included.
        max_hint: the longest server-directed poll delay honoured, in seconds.
    """

    min_interval: float = 1.0
    max_interval: float = 8.0
    age_factor: float = 0.15
    webhook_interval: float = 30.0
    budget_share: float = 0.8
    burst: float = 20.0
    page_size: int = 100
    max_in_flight: int = 16
    max_failures: int = 5
    request_timeout: float = 30.0
    max_hint: float = 300.0

    def __attrs_post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        if not 0 < self.budget_share <= 1:
            raise ValueError("budget_share must be in (0, 1]")
        if not 1 <= self.page_size <= 100:
            raise ValueError("page_size must be 1-100")
        if self.burst < 1 or self.max_in_flight < 1 or self.max_failures < 1:
            raise ValueError("burst, max_in_flight and max_failures must be at least 1")
        if self.webhook_interval <= 0 or self.request_timeout <= 0 or self.age_factor < 0:
            raise ValueError("webhook_interval and request_timeout must be positive")

    def interval(self, age: float) -> float:
        """Seconds until the next poll of a job ``age`` seconds old."""
        return min(self.max_interval, self.min_interval + max(0.0, age) * self.age_factor)


DEFAULT_POLLING = PollPolicy()


class PollSource(Protocol):
    """Where the scheduler gets generations from (the client, or a test double)."""

    async def get(self, generation_id: str) -> tuple[Generation, float | None]:
        """One generation and the server's poll hint in seconds, if it sent one."""
        ...

    async def page(self, cursor: str | None, limit: int) -> tuple[Sequence[Generation], str | None]:
        """One list page, newest first, and the cursor of the next (``None`` at the end)."""
        ...


class Watcher:
    """One waiter's view of a job: a wake-up future and an optional deadline.

    Subclasses override ``notify`` (``as_completed`` collects finished jobs).
    """

    __slots__ = ("deadline", "expired", "future")

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self.expired = False
        self.future: asyncio.Future[None] | None = None

    def notify(self, job: _Job) -> None:
        """The job changed (or failed), or the deadline passed."""
        self.wake()

    def wake(self) -> None:
        future = self.future
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self) -> None:
        """Sleep until the next ``notify``."""
        self.future = asyncio.get_running_loop().create_future()
        try:
            await self.future
        finally:
            self.future = None


class _Job:
    """The shared state of one watched generation; tiny on purpose."""

    __slots__ = (
        "created_at",
        "due",
        "error",
        "failures",
        "hint",
        "id",
        "latest",
        "polling",
        "seen",
        "seq",
        "version",
        "watchers",
    )

    def __init__(self, generation_id: str, now: float) -> None:
        self.id = generation_id
        self.created_at = now
        self.due = now
        self.error: AurousError | None = None
        self.failures = 0
        self.hint: float | None = None
        self.latest: Generation | None = None
        self.polling = False
        self.seen = now
        self.seq = 0
        self.version = 0
        self.watchers: list[Watcher] = []

    @property
    def done(self) -> bool:
        return self.error is not None or (self.latest is not None and self.latest.is_terminal)


def _is_definitive(error: AurousError) -> bool:
    """A poll error that polling again cannot fix (404, 401, 403, 400, another loop...)."""
    return (
        isinstance(error, APIStatusError)
        and 400 <= error.status < 500
        and (error.status not in (408, 409, 425, 429))
    ) or isinstance(error, EventLoopMismatchError)


class PollScheduler:
    """The shared poller of one client (see the module docstring).

    Args:
        source: fetches generations.
        clock: the time source for intervals, deadlines and pacing.
        policy: intervals and budget.
        refill_rate: the GET bucket's refill per second, asked again now and then (the
            governor learns it from the server's headers).
    """

    def __init__(
        self,
        source: PollSource,
        clock: Clock,
        policy: PollPolicy = DEFAULT_POLLING,
        *,
        refill_rate: Callable[[], float] = lambda: 10.0,
    ) -> None:
        self.source = source
        self.clock = clock
        self.policy = policy
        self._refill_rate = refill_rate
        self._jobs: dict[str, _Job] = {}
        # The watched jobs a sweep can refresh (a snapshot seen, not done): a batch keeps
        # its finished jobs watched until its last one ends, so scans go over these only.
        self._pending: dict[str, _Job] = {}
        self._heap: list[tuple[float, int, _Job]] = []
        self._timers: list[tuple[float, int, Watcher]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._wake_scope: anyio.CancelScope | None = None
        self._tokens = policy.burst
        self._tokens_at: float | None = None
        self._in_flight = 0
        self._sweeping = False
        self._next_sweep = -math.inf
        self._sweep_pages = 1
        # Rows the last complete sweep walked to see its last job, and the jobs watched
        # by then: the next sweep asks for about that many rows, not whole pages.
        self._sweep_depth: int | None = None
        self._watched_total = 0
        self._watched_at_sweep = 0
        self._sweep_floor = policy.min_interval
        self._mode_at = -math.inf
        self._sweep_mode = False
        self._demand = 0.0
        self._rate = 0.0
        self.webhooks = False
        self._recent: collections.OrderedDict[str, Generation] = collections.OrderedDict()
        self._closed = False
        #: Counters for tests and benchmarks.
        self.stats: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"<PollScheduler jobs={len(self._jobs)} webhooks={self.webhooks}>"

    @property
    def watched(self) -> int:
        """How many generations are being watched."""
        return len(self._jobs)

    @property
    def running(self) -> bool:
        """Whether the driver task is alive."""
        return self._driver is not None

    # -- registration -------------------------------------------------------------------

    def watch(self, ref: Generation | str, watcher: Watcher) -> _Job:
        """Start watching a generation (by snapshot or id) on behalf of ``watcher``."""
        if self._closed:
            raise RuntimeError("this client has been closed; create a new one")
        generation_id = ref.id if isinstance(ref, Generation) else ref
        if not isinstance(generation_id, str) or not generation_id:
            raise ValueError("a job is a Generation or a non-empty generation id")
        now = self.clock.time()
        job = self._jobs.get(generation_id)
        if job is None:
            job = self._jobs[generation_id] = _Job(generation_id, now)
            self._watched_total += 1
            known = self._recent.get(generation_id)
            if known is None and isinstance(ref, Generation):
                known = ref
            if known is not None:
                self._absorb(job, known, now)
            else:
                self._schedule(job, now)  # an id alone: poll at once
        elif isinstance(ref, Generation) and job.latest is None:
            self._absorb(job, ref, now)
        job.watchers.append(watcher)
        if watcher.deadline is not None:
            heapq.heappush(self._timers, (watcher.deadline, next(self._seq), watcher))
        self._ensure_driver()
        self._wake()
        return job

    def unwatch(self, job: _Job, watcher: Watcher) -> None:
        """Stop watching for ``watcher``; the job is forgotten with its last watcher."""
        with contextlib.suppress(ValueError):
            job.watchers.remove(watcher)
        watcher.deadline = None
        if not job.watchers and self._jobs.get(job.id) is job:
            del self._jobs[job.id]
            self._pending.pop(job.id, None)
            job.seq = -1

    def push(self, generation: Generation) -> None:
        """A fresh snapshot from outside the poller (a webhook): deliver it now."""
        self.stats["pushes"] += 1
        now = self.clock.time()
        job = self._jobs.get(generation.id)
        if job is not None:
            self._absorb(job, generation, now)
        elif generation.is_terminal:
            # The event may beat the wait that is about to start: remember it briefly.
            self._recent[generation.id] = generation
            while len(self._recent) > 10_000:
                self._recent.popitem(last=False)

    async def aclose(self) -> None:
        """Stop the driver and fail nothing: waiters see their task cancelled."""
        self._closed = True
        tasks = [t for t in (self._driver, *self._retiring) if t is not None]
        self._driver = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job in list(self._jobs.values()):
            if not job.done:
                self._fail(job, AurousError("the client was closed while waiting"))

    # -- state changes ------------------------------------------------------------------

    def _interval(self, job: _Job, now: float) -> float:
        if job.hint is not None:
            return min(max(job.hint, 0.0), self.policy.max_hint)
        if self.webhooks:
            return self.policy.webhook_interval
        return self.policy.interval(now - job.created_at)

    def _schedule(self, job: _Job, due: float) -> None:
        if self._jobs.get(job.id) is not job:
            return  # nobody waits for it any more (a poll finished after the last unwatch)
        job.due = due
        job.seq = next(self._seq)
        heapq.heappush(self._heap, (due, job.seq, job))

    def _absorb(self, job: _Job, snapshot: Generation, now: float) -> None:
        """Take a snapshot of ``job``; notify its watchers if anything changed."""
        if job.done:
            return  # terminal states never change (A2), and a failed job stays failed
        job.failures = 0
        job.seen = now
        job.created_at = snapshot.created_at.timestamp()
        if job.latest is None or job.latest != snapshot:
            job.latest = snapshot
            job.version += 1
            self._notify(job)
        if snapshot.is_terminal:
            job.seq = -1
            self._pending.pop(job.id, None)
            return
        if self._jobs.get(job.id) is job:
            self._pending[job.id] = job
        if not job.polling:
            self._schedule(job, now + self._interval(job, now))

    def _fail(self, job: _Job, error: AurousError) -> None:
        if error.generation_id is None:
            error.generation_id = job.id
        job.error = error
        job.seq = -1
        self._pending.pop(job.id, None)
        job.version += 1
        self._notify(job)

    def _notify(self, job: _Job) -> None:
        for watcher in list(job.watchers):
            watcher.notify(job)

    # -- the driver ---------------------------------------------------------------------

    def _ensure_driver(self) -> None:
        if self._driver is None:
            self._driver = asyncio.get_running_loop().create_task(
                self._run(), name="aurous-poll-scheduler"
            )

    def _wake(self) -> None:
        if self._wake_scope is not None:
            self._wake_scope.cancel()

    async def _run(self) -> None:
        me = asyncio.current_task()
        try:
            async with anyio.create_task_group() as tg:
                while True:
                    if not self._jobs:
                        # Decide and detach in one step, so a new watch starts a new driver.
                        if self._driver is me:
                            self._driver = None
                            if me is not None:
                                self._retiring.add(me)
                        tg.cancel_scope.cancel()
                        break
                    delay = self._step(tg)
                    with anyio.CancelScope() as scope:
                        self._wake_scope = scope
                        try:
                            await self.clock.sleep(delay)
                        finally:
                            self._wake_scope = None
        except BaseException as exc:
            if not isinstance(exc, (asyncio.CancelledError, anyio.get_cancelled_exc_class())):
                logger.exception("the poll scheduler failed")
                error = AurousError(f"the poll scheduler failed: {exc!r}")
                for job in list(self._jobs.values()):
                    if not job.done:
                        self._fail(job, error)
            raise
        finally:
            if self._driver is me:
                self._driver = None
            if me is not None:
                self._retiring.discard(me)

    def _refill(self, now: float) -> None:
        if self._tokens_at is None:
            self._tokens_at = now
        elapsed = max(0.0, now - self._tokens_at)
        self._tokens = min(self.policy.burst, self._tokens + elapsed * self._rate)
        self._tokens_at = now

    def _step(self, tg: anyio.abc.TaskGroup) -> float:
        """Launch what is due; return the seconds until something else may be."""
        now = self.clock.time()
        self._fire_timers(now)
        if now - self._mode_at >= 1.0 or self._rate <= 0:
            self._rate = max(1e-3, self._refill_rate() * self.policy.budget_share)
            sweeping = self._sweep_mode
            self._sweep_mode = self._prefer_sweep(now)
            self._mode_at = now
            if sweeping and not self._sweep_mode:
                self._resume_single_polls(now)
        self._refill(now)
        wait = 3600.0
        if self._sweep_mode and not self._sweeping:
            if (
                now >= self._next_sweep
                and self._tokens >= 1
                and self._in_flight < self.policy.max_in_flight
            ):
                self._sweeping = True
                self._tokens -= 1
                self._in_flight += 1
                tg.start_soon(self._sweep)
            else:
                wait = min(wait, max(self._next_sweep - now, 0.0))
        heap = self._heap
        while heap:
            due, seq, job = heap[0]
            if job.seq != seq:
                heapq.heappop(heap)
                continue
            if due > now:
                wait = min(wait, due - now)
                break
            if self._in_flight >= self.policy.max_in_flight:
                break  # a finishing poll wakes the driver
            if self._tokens < 1:
                wait = min(wait, (1 - self._tokens) / self._rate)
                break
            heapq.heappop(heap)
            job.seq = -1
            job.polling = True
            self._tokens -= 1
            self._in_flight += 1
            tg.start_soon(self._poll, job)
        if self._timers:
            wait = min(wait, max(0.0, self._timers[0][0] - now))
        return max(wait, 1e-3)

    def _fire_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, watcher = heapq.heappop(timers)
            if watcher.deadline == deadline:
                watcher.expired = True
                watcher.wake()

    def _prefer_sweep(self, now: float) -> bool:
        """Whether list sweeps should refresh the waiting jobs instead of single polls.

        A sweep's cost does not grow with the jobs it refreshes. It runs every
        ``min_interval`` (``webhook_interval`` while webhooks are attached) while that
        costs fewer GETs than polling every job alone, never faster than the budget
        allows for its pages, and otherwise at the pace that costs the same as the
        single polls: with ``n`` waiting jobs whose own intervals sum to a demand of
        ``d`` polls a second, a sweep of ``p`` pages every ``p / d`` seconds refreshes
        each job at least as often as the average single poll (``n / d``) when
        ``p <= n``. So sweeping is chosen then, and never costs more: old jobs in a
        thinning batch keep a short refresh instead of falling back to ``max_interval``.
        """
        pending = self._pending.values()
        if len(pending) < 2:
            return False
        self._sweep_floor = (
            self.policy.webhook_interval if self.webhooks else self.policy.min_interval
        )
        self._demand = sum(1.0 / self._interval(j, now) for j in pending)
        pages = max(self._sweep_pages, math.ceil(len(pending) / self.policy.page_size))
        return pages <= len(pending)

    def _sweep_period(self, pages: int) -> float:
        period = max(self._sweep_floor, pages / (self._rate * 0.9))
        if self._demand > 0:
            period = max(period, pages / self._demand)
        return period

    def _resume_single_polls(self, now: float) -> None:
        """Sweeps stopped or failed: poll each job within its interval of its last refresh.

        A sweep pushed each job's own poll back past the next sweeps (``_push_back``),
        which may not come now.
        """
        for job in self._pending.values():
            if job.polling or job.seq < 0:
                continue
            due = max(now, job.seen + self._interval(job, now))
            if due < job.due:
                self._schedule(job, due)

    # -- fetching -----------------------------------------------------------------------

    async def _poll(self, job: _Job) -> None:
        self.stats["gets"] += 1
        try:
            snapshot, hint = await self.source.get(job.id)
        except AurousError as exc:
            self._poll_failed(job, exc)
        else:
            job.polling = False
            job.hint = hint
            self._absorb(job, snapshot, self.clock.time())
        finally:
            job.polling = False
            self._in_flight -= 1
            self._wake()

    def _poll_failed(self, job: _Job, error: AurousError) -> None:
        job.polling = False
        if job.done or self._jobs.get(job.id) is not job:
            return
        job.failures += 1
        if _is_definitive(error) or job.failures >= self.policy.max_failures:
            self._fail(job, error)
            return
        logger.info("polling %s failed (%s); trying again later", job.id, error)
        now = self.clock.time()
        self._schedule(job, now + self._interval(job, now))

    async def _sweep(self) -> None:
        """Walk list pages newest first, refreshing every watched job seen.

        Pages are sized to the rows the last sweep needed, plus the jobs watched since
        (new rows on top) and a margin, so a sweep does not download rows it will not
        use; a short guess only costs one more page.
        """
        self.stats["sweeps"] += 1
        targets = set(self._pending)
        oldest = min((j.created_at for j in self._pending.values()), default=math.inf)
        size = self.policy.page_size
        want: int | None = None
        if self._sweep_depth is not None:
            want = self._sweep_depth + self._watched_total - self._watched_at_sweep + 10
        self._watched_at_sweep = self._watched_total
        self._sweep_depth = None
        cursor: str | None = None
        pages = 0
        walked = 0
        start = self.clock.time()
        try:
            while targets:
                if pages:  # the first page's token was taken when the sweep started
                    await self._take_token()
                self.stats["pages"] += 1
                pages += 1
                limit = size if want is None or walked >= want else min(size, want - walked)
                rows, cursor = await self.source.page(cursor, limit)
                now = self.clock.time()
                for row in rows:
                    walked += 1
                    job = self._jobs.get(row.id)
                    if job is not None:
                        if row.id in targets:
                            targets.discard(row.id)
                            if not targets:
                                self._sweep_depth = walked
                        if not job.polling:
                            job.hint = None
                            self._absorb(job, row, now)
                            self._push_back(job, now)
                if cursor is None or not rows or rows[-1].created_at.timestamp() < oldest:
                    break
        except AurousError as exc:
            logger.info("a poll sweep failed (%s); jobs fall back to single polls", exc)
            self._resume_single_polls(self.clock.time())
        finally:
            self._sweep_pages = max(1, pages)
            now = self.clock.time()
            self._next_sweep = start + self._sweep_period(max(1, pages))
            self._sweeping = False
            self._in_flight -= 1
            self._wake()

    def _push_back(self, job: _Job, now: float) -> None:
        """After a sweep, a job's own poll waits for the sweeps that will cover it."""
        if job.done:
            return
        period = self._sweep_period(self._sweep_pages)
        self._schedule(job, now + max(self._interval(job, now), 2.5 * period))

    async def _take_token(self) -> None:
        while True:
            self._refill(self.clock.time())
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await self.clock.sleep((1 - self._tokens) / self._rate)
