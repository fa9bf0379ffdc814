"""Keeping a process registered in the fleet, and its local share when Redis is away.

While Redis answers, every process paces with the shared buckets. When it does not,
each process goes on alone with its share of each bucket: the capacity and the refill
divided by the number of live processes last seen, so that together they stay within
the team's limit.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import anyio
from anyio.abc import TaskStatus

from .._clock import Clock, SystemClock
from .._errors import FleetUnavailableError
from .._ratelimit import BucketSpec
from ._protocol import SharedBuckets

__all__ = ["Membership", "local_share", "process_name"]


def process_name() -> str:
    """A fresh name for this process in the fleet: its pid and a random suffix."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def local_share(spec: BucketSpec, live_processes: int) -> BucketSpec:
    """One process's share of a bucket among ``live_processes`` (at least one token)."""
    processes = max(1, live_processes)
    return BucketSpec(max(1, spec.capacity // processes), spec.refill_per_second / processes)


class Membership:
    """Renews this process's registration and remembers the live count last seen.

    Args:
        buckets: the shared store that registers processes.
        interval: seconds between heartbeats (well below the registration's TTL).
        clock: the time source of the heartbeat loop.
    """

    def __init__(
        self, buckets: SharedBuckets, *, interval: float = 5.0, clock: Clock | None = None
    ) -> None:
        self._buckets = buckets
        self._interval = interval
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.live = 1

    def share(self, spec: BucketSpec) -> BucketSpec:
        """This process's share of ``spec`` among the live processes last seen."""
        return local_share(spec, self.live)

    async def beat(self) -> None:
        """Renew the registration once; on failure keep the count last seen."""
        # On failure the link has logged the loss; the share keeps the last count.
        with contextlib.suppress(FleetUnavailableError):
            self.live = max(1, await self._buckets.heartbeat())

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Beat every ``interval`` seconds until cancelled (started after the first)."""
        await self.beat()
        task_status.started()
        while True:
            await self._clock.sleep(self._interval)
            await self.beat()
