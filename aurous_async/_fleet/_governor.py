"""Fleet mode's rate governor: the client's own governor, gated by the shared buckets.

A metered request first takes a token of the team's shared model
(``SharedBuckets.reserve``: one Redis round trip), the callers of this process queued
first come first served behind one head per bucket; then a permit of the local
``Governor``, which keeps this process's model (``client.rate_limits``) and its 429
pauses. Each answer corrects both: the local model at once, the shared one in front of
this process's next reserve of that bucket (one script call settles the answers and takes
the token), or, when no request follows within ``_SETTLE_DELAY``, through a background
task. A steady stream of requests costs one Redis round trip each.

When Redis does not answer, the buckets are gated by this process's share of each
(capacity and refill divided by the live processes last seen) in an in-process twin of
the shared model. A share starts empty and answers only ever lower it, so the shares of
all processes together never hand out more than the API's bucket refills. Once Redis
answers a ping again, every process goes back to the shared buckets at one moment agreed
through Redis (``rejoin_delay`` after the first one back): a process taking shared
tokens while another still spends its share would overrun the bucket together.
"""

from __future__ import annotations

import collections
import math
import random
from collections.abc import Awaitable, Callable, Mapping

import anyio

from .._clock import Clock
from .._errors import FleetUnavailableError, RateLimitQueueTimeoutError
from .._ratelimit import UNMETERED, BucketSpec, BucketState, Governor, Permit, RateLimit
from ._local import DEFAULT_PAUSE_JITTER, LocalBuckets
from ._membership import Membership, local_share
from ._protocol import Observation, Settlement, SharedBuckets, Ticket

__all__ = ["FleetGovernor"]

#: At most this many seconds of jitter are added to a head's wait for the shared bucket
#: (capped by the wait itself): heads of other processes do not ask again in lockstep.
_ASK_JITTER = 0.05
#: The longest a head sleeps before asking the shared bucket again: another process's
#: answers may have taught the shared model a faster refill meanwhile.
_MAX_ASK_INTERVAL = 1.0
#: Seconds an answer waits for the next reserve of its bucket to carry it to Redis before
#: the background task sends it alone (a 429 is sent at once: it pauses every process).
_SETTLE_DELAY = 0.05
#: At most this many answers ride on one reserve (after an outage, up to
#: ``_UNSETTLED_KEPT`` wait to be settled).
_CARRIED_AT_MOST = 64
#: Grants whose answer could not be reported while Redis was away, kept to settle them
#: once it is back (beyond this, the shared model forgets them after its in-flight TTL).
_UNSETTLED_KEPT = 1024


class FleetGovernor:
    """Paces requests with a bucket model shared by every process on one team key.

    It offers what the requester uses of a ``Governor`` (``try_acquire``, ``acquire``,
    ``observe``, ``snapshot``, ``clock``) and delegates the in-process queue and model
    to one.

    Args:
        local: this process's governor.
        shared: the team's shared buckets.
        membership: the live-process count (this process's share when Redis is away).
        start: awaited before the first shared call (connects and starts the
            background tasks; idempotent).
        recheck_interval: seconds between pings of a lost Redis.
        rejoin_delay: seconds from the first process finding Redis back to every
            process's return to the shared buckets: at least ``recheck_interval`` plus
            the bound of a ping, so that every live process has found it back by then.
        rng: the random source of jitter.
    """

    def __init__(
        self,
        local: Governor,
        shared: SharedBuckets,
        membership: Membership,
        *,
        start: Callable[[], Awaitable[None]],
        recheck_interval: float = 1.0,
        rejoin_delay: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self._local = local
        self._shared = shared
        self._membership = membership
        self._start = start
        self._recheck = recheck_interval
        self._rejoin_delay = rejoin_delay
        self._rng = rng if rng is not None else random.Random()
        self._share = LocalBuckets(local.clock, lower_only=True)
        self.started = False
        #: Redis did not answer: buckets are gated by this process's share.
        self.lost = False
        self._heads: dict[str, anyio.Lock] = {}
        # The sleeping head of each bucket, woken when this process's answer reached Redis.
        self._sleeping: dict[str, anyio.CancelScope] = {}
        # (bucket, local permit seq) -> (granted by Redis?, ticket)
        self._grants: dict[tuple[str, int], tuple[bool, Ticket]] = {}
        # Answers not yet sent to Redis, per bucket, in order.
        self._outbox: dict[str, list[Settlement]] = {}
        self._unsettled: collections.deque[tuple[str, Ticket]] = collections.deque(
            maxlen=_UNSETTLED_KEPT
        )
        self._outbox_ready: anyio.Event | None = None
        # The background task's wait for a following reserve; cancelled to send at once.
        self._settle_delay: anyio.CancelScope | None = None
        self._hurry = False
        # The bucket whose answers the background task is sending, and when it is done.
        self._sending: str | None = None
        self._sent: anyio.Event | None = None
        self._drained: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"<FleetGovernor {'local share' if self.lost else 'shared'}>"

    @property
    def clock(self) -> Clock:
        """The clock the governor paces with."""
        return self._local.clock

    def snapshot(self) -> Mapping[str, BucketState]:
        """This process's view of every bucket used so far (the local model)."""
        return self._local.snapshot()

    # -- acquire ------------------------------------------------------------------------

    def try_acquire(self, bucket: str, now: float | None = None) -> Permit | None:
        """A permit of an unmetered route at once; ``None`` for a metered one (a shared
        token needs a Redis round trip: ``acquire``)."""
        if bucket == UNMETERED:
            return self._local.try_acquire(bucket, now)
        return None

    async def acquire(self, bucket: str, *, max_wait: float | None = None) -> Permit:
        """Take a token of the shared ``bucket``, then a permit of the local governor.

        Raises:
            RateLimitQueueTimeoutError: no token within ``max_wait`` seconds.
            FleetUnavailableError: Redis could not be reached when fleet mode started
                (on the first call of a client not entered with ``async with``).
        """
        if bucket == UNMETERED:
            return await self._local.acquire(bucket, max_wait=max_wait)
        if not self.started:
            await self._start()
        clock = self.clock
        entered_at = clock.time()
        give_up_at = math.inf if max_wait is None else entered_at + max_wait
        from_redis, ticket = await self._reserve(bucket, entered_at, give_up_at, max_wait)
        try:
            left = None if max_wait is None else max(0.0, give_up_at - clock.time())
            permit = await self._local.acquire(bucket, max_wait=left)
        except BaseException:
            # The token was taken: report it as spent (the safe side).
            self._report(bucket, from_redis, ticket, Observation(None))
            raise
        self._grants[(bucket, permit.seq)] = (from_redis, ticket)
        return permit

    async def _reserve(
        self, bucket: str, entered_at: float, give_up_at: float, max_wait: float | None
    ) -> tuple[bool, Ticket]:
        """Wait to be this process's head of ``bucket``, then ask until a token is granted."""
        head = self._heads.get(bucket)
        if head is None:
            head = self._heads[bucket] = anyio.Lock()
        clock = self.clock
        if max_wait is None:
            await head.acquire()
        else:
            with anyio.move_on_after(max(0.0, give_up_at - clock.time())) as turn:
                await head.acquire()
            if turn.cancelled_caught:
                raise _queue_timeout(bucket, max_wait, clock.time() - entered_at, None)
        try:
            while True:
                from_redis = not self.lost
                store: SharedBuckets = self._shared if from_redis else self._share
                settle = await self._take_outbox(bucket) if from_redis else []
                try:
                    # A grant the caller never saw would hold its token in the shared
                    # model until the in-flight TTL: a cancellation waits for the answer
                    # (one bounded call), and ``acquire`` then reports the grant as spent.
                    with anyio.CancelScope(shield=True):
                        reservation = await store.reserve(bucket, settle=settle)
                except FleetUnavailableError:
                    self._lose()
                    self._unsettled.extend(
                        (bucket, ticket) for ticket, _ in settle if ticket is not None
                    )
                    continue
                if reservation.granted:
                    assert reservation.ticket is not None
                    return from_redis, reservation.ticket
                wait = reservation.wait
                wait += self._rng.uniform(0.0, min(wait, _ASK_JITTER))
                now = clock.time()
                if now + wait > give_up_at:
                    assert max_wait is not None
                    raise _queue_timeout(bucket, max_wait, now - entered_at, reservation.wait)
                with anyio.CancelScope() as sleep:
                    self._sleeping[bucket] = sleep
                    try:
                        await clock.sleep(min(wait, _MAX_ASK_INTERVAL))
                    finally:
                        del self._sleeping[bucket]
        finally:
            head.release()

    # -- observe ------------------------------------------------------------------------

    def observe(
        self,
        bucket: str,
        rate_limit: RateLimit | None,
        status: int | None,
        *,
        permit: Permit | None = None,
        now: float | None = None,
    ) -> None:
        """Reconcile the local model at once and the shared one in the background."""
        self._local.observe(bucket, rate_limit, status, permit=permit, now=now)
        if permit is None or bucket == UNMETERED:
            return
        grant = self._grants.pop((bucket, permit.seq), None)
        if grant is None:
            return
        rate = self._local.pacing_rate(bucket)
        from_redis, ticket = grant
        self._report(
            bucket, from_redis, ticket, Observation.from_rate_limit(status, rate_limit, rate)
        )

    def _report(
        self, bucket: str, from_redis: bool, ticket: Ticket, observation: Observation
    ) -> None:
        if not from_redis:
            jitter = (
                self._rng.uniform(0.0, DEFAULT_PAUSE_JITTER) if observation.status == 429 else 0.0
            )
            self._share.observe_at(
                bucket, ticket, self._scaled(observation), now=self.clock.time(), jitter=jitter
            )
            return
        self._outbox.setdefault(bucket, []).append(Settlement(ticket, observation))
        if self._outbox_ready is not None:
            self._outbox_ready.set()
        if observation.status == 429 and self._settle_delay is not None:
            self._settle_delay.cancel()

    async def _take_outbox(self, bucket: str) -> list[Settlement]:
        """The answers of ``bucket`` not yet sent, for the next reserve to carry (after
        any the background task is sending, so that they reach Redis in order)."""
        while self._sending == bucket and self._sent is not None:
            await self._sent.wait()
        pending = self._outbox.get(bucket, [])
        carried, rest = pending[:_CARRIED_AT_MOST], pending[_CARRIED_AT_MOST:]
        if rest:
            self._outbox[bucket] = rest
        else:
            self._outbox.pop(bucket, None)
        return carried

    def _scaled(self, observation: Observation) -> Observation:
        """An answer's headers as this process's share of the bucket would show them."""
        processes = self._membership.live
        limit, remaining, rate = (
            observation.limit,
            observation.remaining,
            observation.refill_per_second,
        )
        if processes <= 1 or limit is None or rate is None:
            return observation
        share = local_share(BucketSpec(limit, rate), processes)
        return observation._replace(
            limit=share.capacity,
            remaining=None if remaining is None else remaining // processes,
            refill_per_second=share.refill_per_second,
        )

    # -- losing and regaining Redis ------------------------------------------------------

    def _lose(self) -> None:
        """Gate every bucket known to the local model with this process's share, empty:
        what the bucket holds now may be promised to other processes' requests."""
        if self.lost:
            return
        self.lost = True
        now = self.clock.time()
        for name, state in self._local.snapshot().items():
            limit, rate = state.limit, self._local.pacing_rate(name)
            if name == UNMETERED or limit is None or rate is None:
                continue
            seen = Observation(200, limit, 0, None, rate)
            self._share.observe_at(name, None, self._scaled(seen), now=now, jitter=0.0)

    async def run_outbox(self) -> None:
        """Send the answers no reserve has carried to Redis within ``_SETTLE_DELAY``, in
        order, until cancelled.

        While Redis is away, the grants are only remembered, and settled (as spent)
        once it is back.
        """
        while True:
            while not self._outbox:
                if self._drained is not None:
                    self._drained.set()
                self._outbox_ready = anyio.Event()
                await self._outbox_ready.wait()
            if not self._hurry and not any(
                s.observation.status == 429 for pending in self._outbox.values() for s in pending
            ):
                with anyio.CancelScope() as self._settle_delay:
                    await self.clock.sleep(_SETTLE_DELAY)
                self._settle_delay = None
            if self._outbox:
                oldest = next(iter(self._outbox))
                await self._send(oldest, self._outbox.pop(oldest))

    async def _send(self, bucket: str, pending: list[Settlement]) -> None:
        """Send one bucket's answers, one observe each; wake its sleeping head."""
        self._sending, self._sent = bucket, anyio.Event()
        try:
            for index, (ticket, observation) in enumerate(pending):
                if self.lost:
                    self._unsettled.extend((bucket, t) for t, _ in pending[index:] if t is not None)
                    return
                try:
                    await self._shared.observe(bucket, ticket, observation)
                except FleetUnavailableError:
                    self._lose()
                    self._unsettled.extend((bucket, t) for t, _ in pending[index:] if t is not None)
                    return
        finally:
            self._sending = None
            self._sent.set()
        sleeping = self._sleeping.get(bucket)
        if sleeping is not None:
            sleeping.cancel()

    async def flush(self) -> None:
        """Send the answers queued so far at once and wait until they have been sent (or
        put aside while Redis is lost): a closing process must not leave its tokens held
        in the shared model until the in-flight TTL forgets them. Needs ``run_outbox``
        running."""
        self._hurry = True
        if self._settle_delay is not None:
            self._settle_delay.cancel()
        if self._outbox or self._sending is not None:
            self._drained = anyio.Event()
            await self._drained.wait()

    async def run_recovery(self) -> None:
        """While Redis is lost, ask it every ``recheck_interval`` seconds; on an answer,
        go back to the shared buckets at the moment the fleet agreed on (until
        cancelled)."""
        while True:
            await self.clock.sleep(self._recheck)
            if not self.lost:
                continue
            try:
                wait = await self._shared.rejoin(self._rejoin_delay)
            except FleetUnavailableError:
                continue
            if wait > 0:
                await self.clock.sleep(wait)
            self.lost = False
            while self._unsettled:
                bucket, ticket = self._unsettled.popleft()
                self._report(bucket, True, ticket, Observation(None))


def _queue_timeout(
    bucket: str, max_wait: float, waited: float, estimate: float | None
) -> RateLimitQueueTimeoutError:
    ahead = f"about {estimate:.3g} s more" if estimate is not None else "an unknown time"
    return RateLimitQueueTimeoutError(
        f"no permit of the {bucket!r} rate-limit bucket within max_queue_wait={max_wait:g} s "
        f"(waited {waited:.3g} s): {ahead} to wait for the team's shared bucket; nothing "
        f"was sent",
        bucket=bucket,
        position=1,
        estimated_wait=estimate,
        max_queue_wait=max_wait,
        waited=waited,
    )
