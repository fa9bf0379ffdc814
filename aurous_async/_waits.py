"""Waiting for generations: ``wait_for``, ``wait``, ``as_completed`` on the shared poller.

Also the poller's HTTP side (``ApiSource``) and the webhook hookup. The scheduling
itself lives in ``_polling``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Sequence
from typing import TypeAlias

from ._errors import (
    APIStatusError,
    AurousError,
    GenerationFailedError,
    WaitTimeoutError,
)
from ._fanout import cancel_call, fetch_call
from ._polling import PollPolicy, PollScheduler, Watcher, _Job
from ._ratelimit import get_header, parse_retry_after
from ._requester import Call, Reply, Requester
from ._resources._base import decode, page_from, params
from ._typed_body import body_parser
from ._webhook_verify import Event
from .models import Generation, GenerationStatus

__all__ = ["ApiSource", "JobRef", "Waits"]

#: What the wait methods accept: a generation or its id.
JobRef: TypeAlias = "Generation | str"


class ApiSource:
    """Fetches generations for the poller: ``GET /v1/images/{id}`` and ``GET /v1/images``."""

    def __init__(self, requester: Requester, policy: PollPolicy) -> None:
        self._requester = requester
        self._policy = policy

    async def get(self, generation_id: str) -> tuple[Generation, float | None]:
        call = fetch_call(generation_id, self._policy.request_timeout)
        return await self._requester.send_and_decode(call, self._with_hint, body_parser(Generation))

    def _with_hint(self, reply: Reply) -> tuple[Generation, float | None]:
        # No documented hint exists; honour one if the API ever sends it on a 2xx.
        hint = parse_retry_after(
            get_header(reply.response.headers, "Retry-After"), now=self._requester.clock.time()
        )
        return decode(reply, Generation), hint

    async def page(self, cursor: str | None, limit: int) -> tuple[Sequence[Generation], str | None]:
        call = Call(
            method="GET",
            path="/v1/images",
            route="/v1/images",
            params=params(limit=limit, starting_after=cursor),
            idempotent=True,
            timeout=self._policy.request_timeout,
        )
        page = page_from(await self._requester.send(call), Generation)
        return page.data, page.next_cursor if page.has_more else None


def _id_of(ref: JobRef) -> str:
    return ref.id if isinstance(ref, Generation) else ref


class _Collector(Watcher):
    """``as_completed``'s one watcher for many jobs: queues each job once it is done."""

    __slots__ = ("finished", "queued")

    def __init__(self, deadline: float | None) -> None:
        super().__init__(deadline)
        self.finished: collections.deque[_Job] = collections.deque()
        self.queued: set[str] = set()

    def notify(self, job: _Job) -> None:
        if job.done and job.id not in self.queued:
            self.queued.add(job.id)
            self.finished.append(job)
        self.wake()


class Waits:
    """The wait methods of one client, over its shared ``PollScheduler``."""

    def __init__(self, scheduler: PollScheduler, requester: Requester) -> None:
        self.scheduler = scheduler
        self._requester = requester
        self._receivers: list[tuple[object, object]] = []

    def _deadline(self, timeout: float | None) -> float | None:
        if timeout is None:
            return None
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        return self.scheduler.clock.time() + timeout

    async def wait_for(
        self, job: JobRef, *, timeout: float | None = None, on_progress: bool = False
    ) -> AsyncGenerator[Generation, None]:
        watcher = Watcher(self._deadline(timeout))
        state = self.scheduler.watch(job, watcher)
        try:
            shown: Generation | None = None
            seen = -1
            while True:
                if state.error is not None:
                    raise state.error
                latest = state.latest
                if state.version != seen and latest is not None:
                    seen = state.version
                    if (
                        shown is None
                        or latest.status != shown.status
                        or (on_progress and latest != shown)
                    ):
                        shown = latest
                        yield latest
                    if latest.is_terminal:
                        return
                    continue
                if watcher.expired or (
                    watcher.deadline is not None and self.scheduler.clock.time() >= watcher.deadline
                ):
                    raise WaitTimeoutError(
                        f"generation {state.id} was not terminal within {timeout:g} s",
                        generation_id=state.id,
                        last=state.latest,
                    )
                await watcher.wait()
        finally:
            self.scheduler.unwatch(state, watcher)

    async def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        raise_on_failure: bool = False,
        cancel_on_timeout: bool = False,
    ) -> Generation:
        last: Generation | None = None
        try:
            async with contextlib.aclosing(self.wait_for(job, timeout=timeout)) as snapshots:
                async for snapshot in snapshots:
                    last = snapshot
        except WaitTimeoutError as exc:
            if cancel_on_timeout:
                exc.last = await self._cancel(_id_of(job)) or exc.last
            raise
        assert last is not None
        assert last.is_terminal
        if raise_on_failure and last.status is not GenerationStatus.SUCCEEDED:
            detail = f": {last.error_message}" if last.error_message else ""
            raise GenerationFailedError(
                f"generation {last.id} ended {last.status.value}{detail}", generation=last
            )
        return last

    async def _cancel(self, generation_id: str) -> Generation | None:
        """Cancel a timed-out job; ``None`` if it had ended meanwhile."""
        try:
            return decode(await self._requester.send(cancel_call(generation_id, None)), Generation)
        except APIStatusError as exc:
            if exc.code == "generation_not_cancellable":
                return None
            raise

    async def as_completed(
        self,
        jobs: Iterable[JobRef] | AsyncIterable[JobRef],
        *,
        timeout: float | None = None,
    ) -> AsyncGenerator[Generation, None]:
        collector = _Collector(self._deadline(timeout))
        watched: dict[str, _Job] = {}
        yielded: set[str] = set()
        feeder: asyncio.Task[None] | None = None
        fed = asyncio.Event()
        source_error: list[BaseException] = []

        def add(ref: JobRef) -> None:
            if _id_of(ref) not in watched:
                state = self.scheduler.watch(ref, collector)
                watched[state.id] = state
                if state.done:
                    collector.notify(state)

        if isinstance(jobs, AsyncIterable):

            async def feed(source: AsyncIterable[JobRef]) -> None:
                try:
                    async for ref in source:
                        add(ref)
                        collector.wake()
                except Exception as exc:
                    source_error.append(exc)
                finally:
                    fed.set()
                    collector.wake()

            feeder = asyncio.get_running_loop().create_task(feed(jobs))
        else:
            for ref in jobs:
                add(ref)
            fed.set()
        try:
            while True:
                while collector.finished:
                    state = collector.finished.popleft()
                    yielded.add(state.id)
                    if state.error is not None:
                        raise state.error
                    assert state.latest is not None
                    yield state.latest
                if fed.is_set() and len(yielded) == len(watched):
                    # A failing source (a create that failed) is raised only after every
                    # job it had handed over was seen through: none is dropped.
                    if source_error:
                        raise source_error[0]
                    return
                if collector.expired or (
                    collector.deadline is not None
                    and self.scheduler.clock.time() >= collector.deadline
                ):
                    pending = tuple(i for i in watched if i not in yielded)
                    raise WaitTimeoutError(
                        f"{len(pending)} generation(s) not terminal within {timeout:g} s",
                        pending=pending,
                    )
                await collector.wait()
        finally:
            if feeder is not None and not feeder.done():
                feeder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feeder
            for state in watched.values():
                self.scheduler.unwatch(state, collector)

    # -- webhooks -----------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """A receiver's listener: generation events resolve their waits at once."""
        try:
            generation = event.generation
        except (ValueError, AurousError):
            return
        if generation is not None:
            self.scheduler.push(generation)
