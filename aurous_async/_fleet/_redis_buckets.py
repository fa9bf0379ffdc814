"""``SharedBuckets`` in Redis: the bucket model as Lua scripts, one round trip a call.

The scripts (``lua/*.lua``, with ``lua/_bucket.lua`` loaded in front of each) run
atomically on the server and read Redis ``TIME``, so every machine shares one clock.
redis-py sends them with EVALSHA and reloads a script the server lost (``NOSCRIPT``).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence

from redis.commands.core import AsyncScript

from .._errors import FleetUnavailableError
from ._local import DEFAULT_PAUSE_JITTER, DEFAULT_TIMINGS, BucketTimings, pause_jitter
from ._membership import process_name
from ._namespace import Namespace
from ._protocol import Observation, Reservation, Settlement, Ticket
from ._redis_link import DEFAULT_CALL_TIMEOUT, RedisLink, as_text, read_lua

__all__ = ["RedisBuckets", "load_script"]

#: ``stale_before`` for a process that lost Redis before any answered reserve: every
#: level is older than this.
_ALL_STALE = 1e300


def load_script(name: str) -> str:
    """The text of ``lua/<name>.lua`` with the shared model in front of it."""
    return read_lua("_bucket") + "\n" + read_lua(name)


def _arg(value: float | int | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact form; Lua's tonumber reads it back exactly
    return str(value)


def _settle_args(ticket: Ticket | None, observation: Observation, jitter: float) -> list[str]:
    """The eleven arguments of ``settle`` in ``lua/_bucket.lua``."""
    return [*map(_arg, ticket or (None,) * 5), *map(_arg, observation), _arg(jitter)]


class RedisBuckets:
    """Rate-limit buckets shared through Redis by every process on one team key.

    Use ``connect`` to build one. ``now`` arguments override Redis ``TIME`` (tests).

    Args:
        link: the Redis connection (bounded, typed calls).
        namespace: the team's key names.
        timings: probe, in-flight, idle and process timings.
        pause_jitter: at most this many seconds added at random to a 429 pause.
        rng: the random source of that jitter.
        process_id: this process's name in the live-process set.
    """

    def __init__(
        self,
        link: RedisLink,
        namespace: Namespace,
        *,
        timings: BucketTimings = DEFAULT_TIMINGS,
        pause_jitter: float = DEFAULT_PAUSE_JITTER,
        rng: random.Random | None = None,
        process_id: str | None = None,
    ) -> None:
        self._link = link
        self._ns = namespace
        self._timings = timings
        self._pause_jitter = pause_jitter
        self._rng = rng if rng is not None else random.Random()
        self.process_id = process_id or process_name()
        client = link.client
        self._reserve = client.register_script(load_script("reserve"))
        self._observe = client.register_script(load_script("observe"))
        self._pause = client.register_script(load_script("pause"))
        self._heartbeat = client.register_script(load_script("heartbeat"))
        self._rejoin = client.register_script(load_script("rejoin"))
        self._idle_ms = round(timings.idle_ttl * 1000)
        self._reserve_args = [
            _arg(timings.probe_ttl),
            _arg(timings.inflight_ttl),
            str(self._idle_ms),
            _arg(timings.probe_poll),
        ]
        self._closed = False
        # Redis time of the last answered reserve; after a loss, the buckets whose level
        # was not corrected since then are probed again (see ``reserve.lua``).
        self._last_seen: float | None = None
        self._stale_before: float | None = None
        self._refreshed: set[str] = set()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        base_url: str,
        api_key: str,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        timings: BucketTimings = DEFAULT_TIMINGS,
        pause_jitter: float = DEFAULT_PAUSE_JITTER,
    ) -> RedisBuckets:
        """Check the URL, reach Redis once and register this process.

        Raises:
            InvalidParameterError: ``url`` is malformed (nothing was sent).
            FleetUnavailableError: Redis is unreachable or refused the credentials.
        """
        link = await RedisLink.open(url, call_timeout=call_timeout)
        try:
            buckets = cls(
                link,
                Namespace.for_team(base_url, api_key),
                timings=timings,
                pause_jitter=pause_jitter,
            )
            await buckets.heartbeat()
        except BaseException:
            await link.aclose()
            raise
        return buckets

    def __repr__(self) -> str:
        return f"RedisBuckets({self._link.url!r})"

    @property
    def link(self) -> RedisLink:
        """The Redis connection."""
        return self._link

    @property
    def namespace(self) -> Namespace:
        """The team's key names."""
        return self._ns

    def _keys(self, bucket: str) -> list[str]:
        return [self._ns.bucket(bucket), self._ns.inflight(bucket)]

    async def _run(self, script: AsyncScript, keys: list[str], args: list[str]) -> object:
        # An ``AsyncScript`` call is EVALSHA, loading the script again on NOSCRIPT.
        try:
            reply: object = await self._link.call(lambda: script(keys=keys, args=args))
        except FleetUnavailableError:
            self._stale_before = _ALL_STALE if self._last_seen is None else self._last_seen
            self._refreshed.clear()
            raise
        return reply

    async def reserve(
        self, bucket: str, *, now: float | None = None, settle: Sequence[Settlement] = ()
    ) -> Reservation:
        """Observe each of ``settle`` in order, then take a token of ``bucket`` if one is
        free now, else say how long to wait: one script call for both.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound (the
                settlements may or may not have been applied: settling one again later
                is harmless, its ticket is no longer in flight).
        """
        args = [
            _arg(now),
            *self._reserve_args,
            _arg(None if bucket in self._refreshed else self._stale_before),
        ]
        for ticket, observation in settle:
            jitter = pause_jitter(observation, self._rng, self._pause_jitter)
            args += _settle_args(ticket, observation, jitter)
        reply = await self._run(self._reserve, self._keys(bucket), args)
        assert isinstance(reply, list)
        granted, wait, known, seq, settled, refused, epoch, at = reply
        store_now = float(at)
        self._last_seen = store_now
        self._refreshed.add(bucket)
        ticket = (
            Ticket(as_text(epoch), int(seq), int(settled), int(refused), store_now)
            if granted
            else None
        )
        return Reservation(bool(granted), float(wait), bool(known), ticket, store_now)

    async def observe(
        self,
        bucket: str,
        ticket: Ticket | None,
        observation: Observation,
        *,
        now: float | None = None,
    ) -> None:
        """Reconcile the shared model with one finished request (a 429 pauses the
        bucket in every process until ``Retry-After`` plus jitter).

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        jitter = pause_jitter(observation, self._rng, self._pause_jitter)
        await self.observe_at(bucket, ticket, observation, now=now, jitter=jitter)

    async def observe_at(
        self,
        bucket: str,
        ticket: Ticket | None,
        observation: Observation,
        *,
        now: float | None,
        jitter: float,
    ) -> tuple[bool, float | None, float]:
        """``observe`` with the 429 jitter given; returns (known, level, paused until)."""
        reply = await self._run(
            self._observe,
            self._keys(bucket),
            [
                _arg(now),
                _arg(self._timings.inflight_ttl),
                str(self._idle_ms),
                *_settle_args(ticket, observation, jitter),
            ],
        )
        assert isinstance(reply, list)
        known, level, paused = reply
        return bool(known), float(level) if known else None, float(paused)

    async def pause(self, bucket: str, seconds: float, *, now: float | None = None) -> None:
        """Hold every process's requests of ``bucket`` for ``seconds``.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        await self._run(
            self._pause, self._keys(bucket), [_arg(now), _arg(float(seconds)), str(self._idle_ms)]
        )

    async def rejoin(self, delay: float, *, now: float | None = None) -> float:
        """Seconds until processes back from losing Redis return to the shared buckets
        together: ``delay`` from the first call after an outage, the same moment for the
        calls that follow it within ``delay`` more.

        Every level older than that moment is then stale: the processes spent their
        local shares meanwhile, and calls sent before the outage may have run only when
        Redis came back, correcting levels from answers that no longer hold. The first
        reserve of each bucket probes it again unless an answer corrected it since.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        reply = await self._run(self._rejoin, [self._ns.rejoin], [_arg(now), _arg(float(delay))])
        assert isinstance(reply, list)
        moment, store_now = float(reply[0]), float(reply[1])
        if self._stale_before is None or moment > self._stale_before:
            self._stale_before = moment
        self._refreshed.clear()
        return moment - store_now

    async def heartbeat(self, *, now: float | None = None) -> int:
        """Renew this process's registration; return the number of live processes.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        return await self._count(self.process_id, now)

    async def live_processes(self, *, now: float | None = None) -> int:
        """The number of processes whose registration has not expired.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        return await self._count("", now)

    async def _count(self, member: str, now: float | None) -> int:
        ttl = _arg(float(self._timings.process_ttl))
        reply = await self._run(self._heartbeat, [self._ns.processes], [_arg(now), member, ttl])
        assert isinstance(reply, int)
        return reply

    async def aclose(self) -> None:
        """Deregister this process (best effort) and close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        # Leaving is best effort: a registration left behind expires by itself.
        with contextlib.suppress(FleetUnavailableError):
            await self._link.call(
                lambda: self._link.client.zrem(self._ns.processes, self.process_id)
            )
        await self._link.aclose()
