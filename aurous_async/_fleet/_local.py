"""``SharedBuckets`` in one process: the default, and the reference model of the Lua scripts.

Step for step what ``lua/reserve.lua``, ``lua/observe.lua`` and ``lua/pause.lua`` do to
the shared hash, on plain Python objects (tests/fleet drive both with the same events
and compare). A bucket's state, the in-flight set and the idle expiry are as described
in ``lua/_bucket.lua``. Only the reset of a level that may be stale after a process lost
Redis (``stale_before`` in ``lua/reserve.lua``) has no counterpart here: this store is
never out of reach.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

from .._clock import Clock, SystemClock
from ._protocol import Observation, Reservation, Settlement, Ticket

__all__ = [
    "DEFAULT_PAUSE_JITTER",
    "DEFAULT_TIMINGS",
    "BucketTimings",
    "LocalBuckets",
    "pause_jitter",
]

#: The model's refill starts this long after each update (as the governor's does).
_LAG = 1e-4
#: At most this many seconds added at random to a 429 pause (as the governor's default).
DEFAULT_PAUSE_JITTER = 0.5


def pause_jitter(observation: Observation, rng: random.Random, most: float) -> float:
    """Seconds added at random (up to ``most``) to the pause a 429 starts; 0 otherwise."""
    return rng.uniform(0.0, most) if observation.status == 429 else 0.0


@attrs.frozen
class BucketTimings:
    """Timings of the shared bucket model (the same for the local and Redis stores).

    Attributes:
        probe_ttl: seconds an unknown bucket's probe may stay unanswered before another
            request may probe.
        probe_poll: the longest wait told to a request held behind a probe.
        inflight_ttl: seconds after which a grant never observed is forgotten (counted
            as consumed), as the governor's ``in_flight_ttl``.
        idle_ttl: seconds after its last use that a bucket's shared state expires (it
            is full again by then; an expired bucket is probed again).
        process_ttl: seconds a process stays registered after its last heartbeat.
    """

    probe_ttl: float = 30.0
    probe_poll: float = 0.05
    inflight_ttl: float = 600.0
    idle_ttl: float = 3600.0
    process_ttl: float = 15.0


#: The timings used unless others are given.
DEFAULT_TIMINGS = BucketTimings()


@attrs.define
class _State:
    epoch: str
    cap: int | None = None
    rate: float | None = None
    level: float | None = None
    ts: float = 0.0
    paused: float = 0.0
    probe: float = 0.0
    issued: int = 0
    settled: int = 0
    refused: int = 0
    expires_at: float = 0.0
    inflight: dict[int, float] = attrs.field(factory=dict)

    @property
    def modelled(self) -> bool:
        return self.cap is not None and self.rate is not None and self.level is not None

    def level_at(self, now: float) -> float:
        assert self.cap is not None
        assert self.level is not None
        if self.rate is None or self.level >= self.cap:
            return self.level
        elapsed = now - self.ts - _LAG
        if elapsed <= 0:
            return self.level
        level = self.level + self.rate * elapsed
        return float(self.cap) if level > self.cap else level

    def expire(self, now: float, ttl: float) -> None:
        stale = [seq for seq, granted in self.inflight.items() if granted < now - ttl]
        for seq in stale:
            del self.inflight[seq]
        if stale:
            self.settled += len(stale)
            if self.modelled:
                self.level = self.level_at(now) - len(stale)
                self.ts = now


def _epoch(now: float) -> str:
    return repr(now)


class LocalBuckets:
    """The shared bucket model held in this process (``SharedBuckets``).

    Args:
        clock: the time source when a call passes no ``now``.
        timings: probe, in-flight and idle timings.
        pause_jitter: at most this many seconds added at random to a 429 pause.
        rng: the random source of that jitter.
        lower_only: answers may lower a known level but never raise it (a process's
            share of a bucket while Redis is away: the headers count every process's
            requests, and this process cannot tell which of them are still to come).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        timings: BucketTimings = DEFAULT_TIMINGS,
        *,
        pause_jitter: float = DEFAULT_PAUSE_JITTER,
        rng: random.Random | None = None,
        lower_only: bool = False,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._timings = timings
        self._pause_jitter = pause_jitter
        self._rng = rng if rng is not None else random.Random()
        self._states: dict[str, _State] = {}
        self._lower_only = lower_only

    def _load(self, bucket: str, now: float) -> tuple[_State, float]:
        state = self._states.get(bucket)
        if state is None or state.expires_at <= now:
            state = self._states[bucket] = _State(epoch=_epoch(now))
        # Time never runs back for a bucket (a stepped clock, or calls that crossed).
        if state.level is not None and now < state.ts:
            now = state.ts
        return state, now

    def _save(self, state: _State, now: float) -> None:
        state.expires_at = now + self._timings.idle_ttl + max(0.0, state.paused - now)

    async def reserve(
        self, bucket: str, *, now: float | None = None, settle: Sequence[Settlement] = ()
    ) -> Reservation:
        """Observe each of ``settle`` in order, then take a token of ``bucket`` if one is
        free now, else say how long to wait."""
        if now is None:
            now = self._clock.time()
        for ticket, observation in settle:
            jitter = pause_jitter(observation, self._rng, self._pause_jitter)
            self.observe_at(bucket, ticket, observation, now=now, jitter=jitter)
        state, now = self._load(bucket, now)
        state.expire(now, self._timings.inflight_ttl)
        known = state.modelled
        delay = state.paused - now
        if known:
            assert state.cap is not None
            assert state.rate is not None
            assert state.level is not None
            needed = 1 + len(state.inflight)
            if needed > state.cap:
                delay = max(delay, 1 / state.rate)
            elif state.level < needed and state.level_at(now) < needed:
                delay = max(
                    delay, state.ts + _LAG + (needed - state.level) / state.rate - now, 1e-6
                )
        elif state.probe > now:
            delay = max(delay, min(state.probe - now, self._timings.probe_poll))
        if delay > 0:
            self._save(state, now)
            return Reservation(False, delay, known, None, now)
        if not known:
            state.probe = now + self._timings.probe_ttl
        ticket = Ticket(state.epoch, state.issued + 1, state.settled, state.refused, now)
        state.issued += 1
        state.inflight[state.issued] = now
        self._save(state, now)
        return Reservation(True, 0.0, known, ticket, now)

    async def observe(
        self,
        bucket: str,
        ticket: Ticket | None,
        observation: Observation,
        *,
        now: float | None = None,
    ) -> None:
        """Reconcile the model with one finished request (see ``lua/observe.lua``)."""
        if now is None:
            now = self._clock.time()
        jitter = pause_jitter(observation, self._rng, self._pause_jitter)
        self.observe_at(bucket, ticket, observation, now=now, jitter=jitter)

    def observe_at(
        self,
        bucket: str,
        ticket: Ticket | None,
        observation: Observation,
        *,
        now: float,
        jitter: float,
    ) -> tuple[bool, float | None, float]:
        """``observe`` with the time and the 429 jitter given (the model itself).

        Returns:
            Whether the bucket is modelled now, its level, and its pause end.
        """
        state, now = self._load(bucket, now)
        state.expire(now, self._timings.inflight_ttl)
        status, limit, remaining, retry_after, _ = observation
        refused = status == 429
        valid = ticket is not None and ticket.epoch == state.epoch
        if valid and ticket is not None and state.inflight.pop(ticket.seq, None) is not None:
            state.settled += 1
            if refused:
                state.refused += 1
            elif state.modelled:
                state.level = state.level_at(now) - 1
                state.ts = now
        state.probe = 0.0
        if refused and limit is None and remaining is None and retry_after is None:
            remaining = 0
        if limit is not None or remaining is not None or retry_after is not None:
            self._reconcile(
                state, ticket if valid else None, observation, remaining, now, self._lower_only
            )
        if refused:
            pause = (1.0 if retry_after is None else retry_after) + jitter
            if now + pause > state.paused:
                state.paused = now + pause
        if state.modelled and state.level is not None and state.level < 0:
            state.level = 0.0
            state.ts = now
        self._save(state, now)
        return state.modelled, state.level if state.modelled else None, state.paused

    @staticmethod
    def _reconcile(
        state: _State,
        ticket: Ticket | None,
        observation: Observation,
        remaining: int | None,
        now: float,
        lower_only: bool,
    ) -> None:
        refused = observation.status == 429
        granted_at = ticket.granted_at if ticket is not None else now
        first_sight = state.cap is None or state.level is None
        limit, rate = observation.limit, observation.refill_per_second
        if limit is not None and limit > 0:
            state.cap = limit
            if rate is not None and rate > 0:
                state.rate = rate
        if state.cap is None or state.rate is None or remaining is None:
            return
        remaining = min(remaining, state.cap)
        in_flight = len(state.inflight)
        if ticket is not None:
            others = state.issued - ticket.settled_before - 1
            refusals = state.refused - ticket.refused_before - (1 if refused else 0)
            unsettled = max(others - refusals, 0)
        else:
            unsettled = in_flight
        floor = remaining - unsettled
        since = now - granted_at
        ceiling = remaining + 1 + (state.rate * since if since > 0 else 0)
        target = floor + in_flight
        too_high = first_sight or refused
        level = 0.0
        if not too_high:
            level = state.level_at(now)
            too_high = level - in_flight >= ceiling
        if too_high or (level < target and not lower_only):
            state.level = float(target)
            state.ts = now

    async def pause(self, bucket: str, seconds: float, *, now: float | None = None) -> None:
        """Hold ``bucket`` for ``seconds`` (a longer pause already set is kept)."""
        if now is None:
            now = self._clock.time()
        state, now = self._load(bucket, now)
        state.paused = max(state.paused, now + seconds)
        self._save(state, now)

    async def rejoin(self, delay: float, *, now: float | None = None) -> float:
        """Never out of reach: at once."""
        return 0.0

    async def heartbeat(self, *, now: float | None = None) -> int:
        """One process: always 1."""
        return 1

    async def live_processes(self, *, now: float | None = None) -> int:
        """One process: always 1."""
        return 1

    async def aclose(self) -> None:
        """Nothing to release."""
