"""The one small protocol behind fleet mode's shared state.

The rate governor, the batch and the webhook wake-ups talk to shared state only through
these types. ``LocalBuckets`` (in-process) is the default implementation and the
reference model; ``RedisBuckets`` and ``RedisRelay`` share the state between processes.
Every method of a Redis implementation raises ``FleetUnavailableError`` when Redis
cannot answer within its bound; callers fall back to a local share (see
docs/contract-notes.md, "Fleet mode").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from .._ratelimit import RateLimit
    from .._webhook_verify import Event

__all__ = [
    "EventRelay",
    "Observation",
    "Reservation",
    "Settlement",
    "SharedBuckets",
    "Ticket",
]


class Ticket(NamedTuple):
    """One granted reservation; hand it back to ``SharedBuckets.observe``.

    Attributes:
        epoch: which incarnation of the shared bucket granted it (a ticket from before
            a Redis restart names nothing in the new one).
        seq: its grant number within the epoch.
        settled_before: answers counted in the bucket when it was granted.
        refused_before: 429s counted in the bucket when it was granted.
        granted_at: the store's clock (Redis ``TIME``) at the grant, epoch seconds.
    """

    epoch: str
    seq: int
    settled_before: int
    refused_before: int
    granted_at: float


class Reservation(NamedTuple):
    """What ``reserve`` answered.

    Attributes:
        granted: a token was taken: send the request, then ``observe`` with ``ticket``.
        wait: when not granted, seconds after which asking again may succeed.
        known: the shared model knows the bucket's level. ``False`` for a bucket never
            seen (or lost with a Redis restart): only one probe request is let out
            until its headers arrive.
        ticket: the grant's ticket (``None`` when not granted).
        now: the store's clock when it answered, epoch seconds.
    """

    granted: bool
    wait: float
    known: bool
    ticket: Ticket | None
    now: float


class Observation(NamedTuple):
    """One finished request as the shared model needs it.

    Attributes:
        status: the HTTP status, ``None`` if no response arrived.
        limit: ``X-RateLimit-Limit``, the bucket capacity.
        remaining: ``X-RateLimit-Remaining``, tokens left after the request.
        retry_after: ``Retry-After`` seconds (429).
        refill_per_second: the refill rate the caller's governor paces this bucket with.
    """

    status: int | None
    limit: int | None = None
    remaining: int | None = None
    retry_after: float | None = None
    refill_per_second: float | None = None

    @classmethod
    def from_rate_limit(
        cls, status: int | None, rate_limit: RateLimit | None, refill_per_second: float | None
    ) -> Observation:
        """Build one from a response's parsed ``RateLimit`` (``Reset`` is not used: it
        is the API server's clock, and levels are corrected from counts)."""
        if rate_limit is None:
            return cls(status, refill_per_second=refill_per_second)
        return cls(
            status,
            rate_limit.limit,
            rate_limit.remaining,
            rate_limit.retry_after,
            refill_per_second,
        )


class Settlement(NamedTuple):
    """A finished request not yet reported, settled in front of the next ``reserve``.

    Attributes:
        ticket: the grant's ticket (``None``: reconcile the headers without settling).
        observation: what the request's answer said.
    """

    ticket: Ticket | None
    observation: Observation


class SharedBuckets(Protocol):
    """Token buckets shared by every process on one API base URL and key.

    ``now`` arguments override the store's clock (tests); ``None`` means its own clock.
    """

    async def reserve(
        self, bucket: str, *, now: float | None = None, settle: Sequence[Settlement] = ()
    ) -> Reservation:
        """Observe each of ``settle`` in order (as ``observe`` would), then take a token of
        ``bucket`` if one is free now, else say how long to wait: one call for both."""
        ...

    async def observe(
        self,
        bucket: str,
        ticket: Ticket | None,
        observation: Observation,
        *,
        now: float | None = None,
    ) -> None:
        """Reconcile the shared model with one finished request (a 429 pauses the
        bucket for every process until ``Retry-After`` plus jitter)."""
        ...

    async def pause(self, bucket: str, seconds: float, *, now: float | None = None) -> None:
        """Hold every process's requests of ``bucket`` for ``seconds``."""
        ...

    async def rejoin(self, delay: float, *, now: float | None = None) -> float:
        """Seconds until the processes back from losing the store return to it together
        (``delay`` from the first of them to ask)."""
        ...

    async def heartbeat(self, *, now: float | None = None) -> int:
        """Renew this process's registration; return the number of live processes."""
        ...

    async def live_processes(self, *, now: float | None = None) -> int:
        """The number of processes whose registration has not expired."""
        ...

    async def aclose(self) -> None:
        """Deregister this process and release connections. Idempotent."""
        ...


class EventRelay(Protocol):
    """Hands verified webhook events from the process that received them to every other."""

    async def publish(self, event: Event) -> None:
        """Send a verified event to the other processes' subscribers."""
        ...

    async def serve(
        self,
        callback: Callable[[Event], None],
        *,
        task_status: TaskStatus[None] = ...,
    ) -> None:
        """Call ``callback`` with every event published by another process, until
        cancelled; ``task_status.started()`` once subscribed."""
        ...
