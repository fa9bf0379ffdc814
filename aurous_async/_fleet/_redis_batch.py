"""One batch split between processes through Redis: a Streams consumer group per batch.

Every line is one stream entry, added once (``lua/batch_seed.lua``, guarded by a
seeded flag, so processes racing to start seed it once). A process claims entries
(``XREADGROUP``), renews its claims while it works (``XCLAIM ... JUSTID`` to itself, only
for entries it still owns), and takes over entries that another process stopped renewing
for ``claim_timeout`` seconds (``XAUTOCLAIM``: that process died). A line's state is a
JSON record in a hash; every write checks in the same script that the writer still owns
the entry, and the write that closes a line acknowledges the entry too, so a line is
closed once, by its current owner. The keys (under the team's hash tag, see
``Namespace.batch``):

==========  ======  ================================================================
stream      stream  one entry per line (``line`` field); consumer group ``workers``
meta        hash    ``total`` lines, ``seeded`` flag, ``charged`` credits (closed lines)
status      hash    line -> status
records     hash    line -> JSON record (id, cost, files, error, key, worker, ...)
counts      hash    status -> number of lines in it (the live view's fleet-wide counts)
closed      set     lines with nothing left to do; the batch is complete when all are
==========  ======  ================================================================

Every key expires ``ttl`` seconds after the batch's last write.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._namespace import Namespace
from ._redis_link import RedisLink, as_text, read_lua

__all__ = [
    "DEFAULT_BATCH_TTL",
    "DEFAULT_CLAIM_TIMEOUT",
    "DEFAULT_MAX_DELIVERIES",
    "BatchState",
    "Claimed",
    "RedisBatch",
    "worker_name",
]

#: Seconds without renewal after which a line is taken over from its owner.
DEFAULT_CLAIM_TIMEOUT = 60.0
#: How many processes a line is handed to at most: a line whose last holder also
#: stopped without finishing it is closed as abandoned instead of handed out again.
DEFAULT_MAX_DELIVERIES = 3
#: Seconds a batch's keys live after its last write (a week).
DEFAULT_BATCH_TTL = 7 * 24 * 3600.0
_GROUP = "workers"
_PARTS = ("stream", "meta", "status", "records", "counts", "closed")


def worker_name() -> str:
    """A name for this process in the batch: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@attrs.frozen
class BatchState:
    """How far the whole batch is.

    Attributes:
        total: lines in the batch.
        closed: lines with nothing left to do.
        charged: credits of the lines closed as succeeded.
    """

    total: int
    closed: int
    charged: float

    @property
    def complete(self) -> bool:
        """Every line is closed."""
        return self.closed >= self.total


@attrs.frozen
class Claimed:
    """A line this process now owns.

    Attributes:
        entry: its stream entry id (the claim).
        line: the line number.
        record: its last record, ``None`` if no process recorded anything yet.
        deliveries: how many times the line has been handed to a process, this time
            included (more than one: processes that held it stopped or stalled).
    """

    entry: str
    line: int
    record: Mapping[str, Any] | None
    deliveries: int = 1


class RedisBatch:
    """The Redis side of one fleet batch, for one process (a consumer of the group).

    Args:
        link: the Redis connection (bounded, typed calls).
        namespace: the team's key names.
        batch_id: the batch (derived from the input's content by the caller).
        consumer: this process's name in the group (``worker_name()``).
        claim_timeout: seconds without renewal after which others take a line over.
        max_deliveries: how many processes a line is handed to at most (see
            ``Claimed.deliveries``; the caller closes a line handed out more often).
        ttl: seconds the batch's keys live after its last write.
    """

    def __init__(
        self,
        link: RedisLink,
        namespace: Namespace,
        batch_id: str,
        *,
        consumer: str | None = None,
        claim_timeout: float = DEFAULT_CLAIM_TIMEOUT,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
        ttl: float = DEFAULT_BATCH_TTL,
    ) -> None:
        self._link = link
        self.batch_id = batch_id
        self.consumer = consumer or worker_name()
        self.claim_timeout = claim_timeout
        self.max_deliveries = max_deliveries
        self._keys = {part: namespace.batch(batch_id, part) for part in _PARTS}
        self._ttl_ms = str(round(ttl * 1000))
        self._idle_ms = str(max(1, round(claim_timeout * 1000)))
        self._cursor = "0-0"
        client = link.client
        self._seed = client.register_script(read_lua("batch_seed"))
        self._claim = client.register_script(read_lua("batch_claim"))
        self._renew = client.register_script(read_lua("batch_renew"))
        self._commit = client.register_script(read_lua("batch_commit"))
        self._reopen = client.register_script(read_lua("batch_reopen"))

    def __repr__(self) -> str:
        return f"RedisBatch({self._link.url!r}, {self.batch_id!r})"

    def key(self, part: str) -> str:
        """The Redis key of one part of the batch (see the module docstring)."""
        return self._keys[part]

    async def _run(self, script: object, parts: Sequence[str], args: Sequence[str]) -> Any:
        keys = [self._keys[part] for part in parts]
        # ``register_script`` returns an ``AsyncScript``; its call is EVALSHA + reload.
        return await self._link.bounded(lambda: script(keys=keys, args=args))  # type: ignore[operator]

    async def _hash(self, part: str) -> Any:
        key = self._keys[part]
        return await self._link.bounded(lambda: self._link.client.hgetall(key))

    async def seed(self, lines: Sequence[int]) -> bool:
        """Add every line to the batch unless it is there already; True if this call did.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        parts = ("stream", "meta", "status", "counts", "closed", "records")
        reply = await self._run(self._seed, parts, [_GROUP, self._ttl_ms, *map(str, lines)])
        return bool(reply)

    async def claim(self, count: int) -> tuple[BatchState, list[Claimed]] | None:
        """Claim up to ``count`` lines (taken over from dead processes first).

        ``count`` 0 only reads the batch's state. Returns ``None`` when the batch is not
        in Redis (never seeded, or Redis lost it): seed it again.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        args = [_GROUP, self.consumer, self._idle_ms, str(count), self._cursor]
        reply = await self._run(self._claim, ("stream", "meta", "closed", "records"), args)
        if reply[0] == -1:
            self._cursor = "0-0"
            return None
        total, closed, cursor, charged, *flat = reply
        self._cursor = as_text(cursor)
        claimed = [
            Claimed(as_text(entry), int(line), json.loads(record) if record else None, int(n))
            for entry, line, record, n in zip(
                flat[0::4], flat[1::4], flat[2::4], flat[3::4], strict=True
            )
        ]
        return BatchState(int(total), int(closed), float(charged)), claimed

    async def renew(self, entries: Sequence[str]) -> list[str]:
        """Renew this process's claims; return the entries it no longer owns.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        if not entries:
            return []
        reply = await self._run(self._renew, ("stream",), [_GROUP, self.consumer, *entries])
        return [as_text(entry) for entry in reply]

    async def commit(
        self,
        claimed: Claimed,
        status: str,
        record: Mapping[str, object],
        *,
        close: bool,
        charged: float | None = None,
    ) -> bool:
        """Record a line's state (and close it) if this process still owns it.

        Returns:
            False if another process took the line over (nothing was written).

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound (the
                write may or may not have happened).
        """
        args = [
            _GROUP,
            self.consumer,
            claimed.entry,
            str(claimed.line),
            status,
            json.dumps(record, sort_keys=True, separators=(",", ":")),
            "1" if close else "0",
            "" if charged is None else repr(float(charged)),
            self._ttl_ms,
        ]
        return bool(await self._run(self._commit, _PARTS, args))

    async def reopen(self, line: int, seen: str) -> bool:
        """Put a closed line whose status is still ``seen`` back in the stream.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        parts = ("stream", "status", "counts", "closed")
        return bool(await self._run(self._reopen, parts, [str(line), seen]))

    async def statuses(self) -> dict[int, str]:
        """Every line's status.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        raw = await self._hash("status")
        return {int(line): as_text(status) for line, status in raw.items()}

    async def records(self) -> dict[int, dict[str, Any]]:
        """Every line's record (lines nobody recorded yet are absent).

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        raw = await self._hash("records")
        return {int(line): json.loads(record) for line, record in raw.items()}

    async def counts(self) -> dict[str, int]:
        """The number of lines in each status, over the whole fleet.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        raw = await self._hash("counts")
        counts = {as_text(status): int(n) for status, n in raw.items()}
        return {status: n for status, n in counts.items() if n > 0}

    async def aclose(self) -> None:
        """Close the connection. Idempotent."""
        await self._link.aclose()
