"""Fleet mode's one Redis connection pool: every call bounded, every failure typed.

redis-py retries a failed command with backoff by default (a stopped server took
seconds to give up): here it retries only a broken connection, once and at once, and
each call has a hard time bound, so a caller learns within that bound that Redis cannot
answer, as a ``FleetUnavailableError`` naming the URL with the password redacted.
Losing Redis is logged once as a warning, getting it back once as info.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TypeVar

import anyio
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._errors import FleetUnavailableError
from ._redis_url import redact, validate_redis_url

__all__ = ["DEFAULT_CALL_TIMEOUT", "RedisLink", "as_text", "read_lua"]

logger = logging.getLogger("aurous_async.fleet")

#: Seconds one Redis call may take before it counts as Redis being unavailable.
DEFAULT_CALL_TIMEOUT = 0.5

_T = TypeVar("_T")
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)
# Replies that mean the credentials are wrong or missing, not that a command is.
_AUTH_REPLIES = ("NOAUTH", "WRONGPASS", "NOPERM", "invalid password", "invalid username")


def read_lua(name: str) -> str:
    """The text of the script ``lua/<name>.lua`` shipped beside fleet mode's modules."""
    folder = resources.files(__package__).joinpath("lua")
    return folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")


def as_text(value: bytes | str) -> str:
    """A string from a Redis reply (redis-py returns bytes unless told to decode)."""
    return value.decode() if isinstance(value, bytes) else value


class RedisLink:
    """A redis-py asyncio client with bounded, non-retried, typed calls.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]`` (or ``rediss://``, ``unix://``).
        call_timeout: the bound of each call (connecting included), seconds.
        client: a ready client to use instead of one built from ``url`` (tests).

    Raises:
        InvalidParameterError: ``url`` is malformed.
    """

    def __init__(
        self,
        url: str,
        *,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        client: redis.asyncio.Redis | None = None,
    ) -> None:
        validate_redis_url(url)
        self.url = redact(url)
        self.call_timeout = call_timeout
        self._password = urllib.parse.urlsplit(url).password
        self.client: redis.asyncio.Redis = client or redis.asyncio.Redis.from_url(
            url,
            socket_timeout=call_timeout,
            socket_connect_timeout=call_timeout,
            # One immediate retry, on a broken connection only: a pooled connection the
            # server closed (restart, idle timeout) is replaced within the same bound.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            retry_on_error=[RedisConnectionError],  # redis-py 5 retries only these
        )
        self._lost = False

    @classmethod
    async def open(cls, url: str, *, call_timeout: float = DEFAULT_CALL_TIMEOUT) -> RedisLink:
        """A link to ``url`` that Redis has answered once (closed again if it did not).

        Raises:
            InvalidParameterError: ``url`` is malformed (nothing was sent).
            FleetUnavailableError: Redis is unreachable or refused the credentials.
        """
        link = cls(url, call_timeout=call_timeout)
        try:
            await link.check()
        except BaseException:
            await link.aclose()
            raise
        return link

    def __repr__(self) -> str:
        return f"RedisLink({self.url!r})"

    @property
    def lost(self) -> bool:
        """Whether the last call failed for want of Redis."""
        return self._lost

    async def check(self) -> None:
        """Ping Redis once (at start): raise rather than log when it cannot answer.

        Raises:
            FleetUnavailableError: Redis is unreachable or refused the credentials.
        """
        await self.bounded(self.client.ping)

    async def call(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run one Redis operation within the bound.

        Raises:
            FleetUnavailableError: Redis did not answer in time, the connection failed,
                or it refused the credentials. The first failure after a success is
                logged as a warning; the next success as info.
        """
        try:
            result = await self.bounded(operation)
        except FleetUnavailableError as exc:
            if not self._lost:
                self._lost = True
                logger.warning("%s; fleet mode goes on without it until it answers", exc.message)
            raise
        if self._lost:
            self._lost = False
            logger.info("Redis at %s answers again; fleet mode shares state through it", self.url)
        return result

    def mark_lost(self, error: FleetUnavailableError) -> None:
        """Record a failure seen outside ``call`` (a subscriber connection)."""
        if not self._lost:
            self._lost = True
            logger.warning("%s; webhook wake-ups from other processes pause", error.message)

    def mark_back(self) -> None:
        """Record a success seen outside ``call``."""
        if self._lost:
            self._lost = False
            logger.info("Redis at %s answers again", self.url)

    async def bounded(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run one operation within the bound, translating failures; logs nothing."""
        try:
            with anyio.fail_after(self.call_timeout):
                return await operation()
        except AuthenticationError as exc:
            raise self.refused(exc) from None
        except _UNREACHABLE as exc:
            raise self.unreachable(exc) from None
        except ResponseError as exc:
            if any(reply in str(exc) for reply in _AUTH_REPLIES):
                raise self.refused(exc) from None
            raise

    def unreachable(self, exc: BaseException) -> FleetUnavailableError:
        """The typed error for a connection failure or timeout."""
        reason = self._scrub(str(exc)) or f"no answer within {self.call_timeout:g} s"
        return FleetUnavailableError(f"Redis at {self.url} is unreachable: {reason}")

    def refused(self, exc: BaseException) -> FleetUnavailableError:
        """The typed error for wrong or missing credentials."""
        return FleetUnavailableError(
            f"Redis at {self.url} refused the credentials: {self._scrub(str(exc))}"
        )

    def _scrub(self, text: str) -> str:
        line = " ".join(text.split())
        if self._password:
            line = line.replace(self._password, "***")
        return line

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent."""
        await self.client.aclose()
