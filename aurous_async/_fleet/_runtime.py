"""Fleet mode of one client: its Redis link, shared governor, webhook relay and tasks.

Built when the client is (a malformed URL fails there, before anything is sent);
started at ``async with`` or on the first metered request (an unreachable Redis fails
there); closed with the client. The background tasks (heartbeat, relay subscriber,
observation sender, reconnection) run in one task of the client's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

from .._errors import FleetUnavailableError
from .._ratelimit import Governor
from .._webhook_verify import Event
from ._governor import FleetGovernor
from ._membership import Membership
from ._namespace import Namespace
from ._redis_buckets import RedisBuckets
from ._redis_link import DEFAULT_CALL_TIMEOUT, RedisLink
from ._redis_relay import RedisRelay

__all__ = ["Fleet"]

logger = logging.getLogger("aurous_async.fleet")

#: Attempts to reach Redis at start: a busy machine (many workers starting at once) can
#: miss one call's bound; a refused connection fails every attempt at once.
_START_ATTEMPTS = 3
#: The most seconds ``aclose`` waits for queued observations to reach Redis.
_FLUSH_TIMEOUT = 1.0
#: Seconds between pings of a lost Redis.
_RECHECK_INTERVAL = 1.0
#: Seconds added to the rejoin delay for a loaded machine's scheduling.
_REJOIN_MARGIN = 0.25
#: Seconds between attempts to subscribe to the relay channel while Redis is away.
_RESUBSCRIBE_DELAY = 0.25


class Fleet:
    """One client's share in fleet mode.

    Args:
        url: the Redis URL.
        base_url: the API root (part of the team's namespace).
        api_key: the team's API key (hashed into the namespace; never sent to Redis).
        local: the client's own governor, gated by the shared buckets.
        deliver: hands an event relayed from another process to the client's waits.
        call_timeout: the bound of each Redis call, seconds.
        heartbeat_interval: seconds between renewals of this process's registration.

    Raises:
        InvalidParameterError: ``url`` is malformed (nothing was sent).
    """

    def __init__(
        self,
        url: str,
        *,
        base_url: str,
        api_key: str,
        local: Governor,
        deliver: Callable[[Event], None],
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        heartbeat_interval: float = 1.0,
    ) -> None:
        self._link = RedisLink(url, call_timeout=call_timeout)
        namespace = Namespace.for_team(base_url, api_key)
        self.buckets = RedisBuckets(self._link, namespace)
        self.relay = RedisRelay(self._link, namespace, api_key)
        self.membership = Membership(self.buckets, interval=heartbeat_interval, clock=local.clock)
        self.governor = FleetGovernor(
            local,
            self.buckets,
            self.membership,
            start=self.start,
            recheck_interval=_RECHECK_INTERVAL,
            # By then every live process has pinged Redis once more (one interval and
            # one call's bound) and is waiting for the same moment.
            rejoin_delay=_RECHECK_INTERVAL + call_timeout + _REJOIN_MARGIN,
        )
        self._deliver = deliver
        self._driver: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<Fleet {self._link.url!r}>"

    @property
    def url(self) -> str:
        """The Redis URL, password redacted."""
        return self._link.url

    @property
    def live_processes(self) -> int:
        """The number of live processes on the team key last seen (at least 1)."""
        return self.membership.live

    async def start(self) -> None:
        """Reach Redis, register this process and start the background tasks, once.

        Returns once the relay's subscription is confirmed (or has failed and is being
        retried), so events published from then on reach this process.

        Raises:
            FleetUnavailableError: Redis is unreachable or refused the credentials.
            RuntimeError: fleet mode was closed.
        """
        if self.governor.started:
            return
        if self._closed:
            raise RuntimeError("this client has been closed; create a new one")
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.governor.started:
                return
            await self._check()
            await self.membership.beat()
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._driver = asyncio.get_running_loop().create_task(
                self._drive(ready), name="aurous-fleet"
            )
            await asyncio.shield(ready)
            self.governor.started = True

    async def _check(self) -> None:
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                await self._link.check()
            except FleetUnavailableError:
                if attempt == _START_ATTEMPTS:
                    raise
            else:
                return

    async def _drive(self, ready: asyncio.Future[None]) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.membership.run)
                tg.start_soon(self.governor.run_outbox)
                tg.start_soon(self.governor.run_recovery)
                await tg.start(self._relay_forever)
                ready.set_result(None)
        except BaseException as exc:
            if not isinstance(exc, (asyncio.CancelledError, anyio.get_cancelled_exc_class())):
                logger.exception("fleet mode's background tasks failed")
            raise
        finally:
            if not ready.done():
                ready.set_result(None)

    async def _relay_forever(self, *, task_status: TaskStatus[None]) -> None:
        """Serve the relay; a first subscription that fails is retried like a later loss."""
        status = task_status
        while True:
            try:
                await self.relay.serve(self._deliver, task_status=status)
            except FleetUnavailableError as exc:
                self._link.mark_lost(exc)
                if status is not anyio.TASK_STATUS_IGNORED:
                    status.started()
            status = anyio.TASK_STATUS_IGNORED
            await anyio.sleep(_RESUBSCRIBE_DELAY)

    async def publish(self, event: Event) -> None:
        """Relay a verified event to the other processes (a receiver listener); a lost
        Redis is logged once by the link and the event is not relayed."""
        with contextlib.suppress(FleetUnavailableError):
            await self.relay.publish(event)

    async def aclose(self) -> None:
        """Stop the background tasks, deregister this process and close the link."""
        if self._closed:
            return
        self._closed = True
        driver, self._driver = self._driver, None
        if driver is not None:
            with anyio.move_on_after(_FLUSH_TIMEOUT):
                await self.governor.flush()
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver
        if self.governor.started:
            await self.buckets.aclose()  # deregisters this process first
        else:
            await self._link.aclose()
