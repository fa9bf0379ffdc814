"""Which API a command talks to: the real one, or an emulator started in-process.

With no ``AUROUS_API_KEY`` and no ``--base-url`` (or with ``--emulator``) the command
starts the emulator in this process and says so in one line, so the README's first
command works on a fresh machine with no account and no network.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator

import attrs

from .._client import AsyncAurous
from .._clock import Clock, SystemClock
from .._config import ENV_API_KEY, ENV_BASE_URL
from .._errors import AurousError
from .._polling import DEFAULT_POLLING, PollPolicy

__all__ = ["EMBEDDED", "RateWaitMeter", "Target", "TargetOptions", "open_target"]

#: The journal's name for the in-process emulator (its state dies with the command).
EMBEDDED = "embedded-emulator"
#: Job lifecycles of the embedded emulator run this many times faster than real ones.
EMBEDDED_TIME_SCALE = 60.0

_measuring: contextvars.ContextVar[bool] = contextvars.ContextVar("aurous_cli_measuring")


class RateWaitMeter:
    """A clock that counts the wall time spent sleeping inside ``measuring()`` blocks.

    The client's rate governor and retry loop sleep on the client's clock; around a
    create those sleeps are waits for the rate limit (pacing, ``Retry-After``), so
    their union is the "time waiting on rate limits" the progress view shows.
    """

    def __init__(
        self, inner: Clock | None = None, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._inner: Clock = inner if inner is not None else SystemClock()
        self._monotonic = monotonic
        self._sleepers = 0
        self._since = 0.0
        self._total = 0.0

    def time(self) -> float:
        return self._inner.time()

    async def sleep(self, seconds: float) -> None:
        if not _measuring.get(False):
            await self._inner.sleep(seconds)
            return
        if self._sleepers == 0:
            self._since = self._monotonic()
        self._sleepers += 1
        try:
            await self._inner.sleep(seconds)
        finally:
            self._sleepers -= 1
            if self._sleepers == 0:
                self._total += self._monotonic() - self._since

    @property
    def waited(self) -> float:
        """Seconds during which at least one measured call was waiting."""
        running = self._monotonic() - self._since if self._sleepers else 0.0
        return self._total + running

    @staticmethod
    @contextlib.contextmanager
    def measuring() -> Iterator[None]:
        token = _measuring.set(True)
        try:
            yield
        finally:
            _measuring.reset(token)


@attrs.frozen
class TargetOptions:
    """The connection flags every command shares."""

    api_key: str | None = attrs.field(default=None, repr=False)
    base_url: str | None = None
    emulator: bool = False
    time_scale: float = EMBEDDED_TIME_SCALE
    timeout: float | None = None
    #: Fleet mode: the Redis whose shared buckets pace the client (``batch --redis``).
    #: ``None`` leaves the choice to the client (``AUROUS_REDIS_URL``).
    redis_url: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class Target:
    """An open client and what it points at."""

    client: AsyncAurous
    name: str
    embedded: bool
    meter: RateWaitMeter


def wants_embedded(options: TargetOptions) -> bool:
    """Whether the command runs against the in-process emulator."""
    if options.emulator:
        return True
    if options.base_url or os.environ.get(ENV_BASE_URL):
        return False
    return not (options.api_key or os.environ.get(ENV_API_KEY))


def _scaled_polling(time_scale: float) -> PollPolicy:
    """Poll the embedded emulator as often, in its time, as the real API in real time."""
    return attrs.evolve(
        DEFAULT_POLLING,
        min_interval=max(0.02, DEFAULT_POLLING.min_interval / time_scale),
        max_interval=max(0.02, DEFAULT_POLLING.max_interval / time_scale),
    )


@contextlib.asynccontextmanager
async def open_target(
    options: TargetOptions, *, notice: Callable[[str], None]
) -> AsyncIterator[Target]:
    """Yield a client for the chosen API; start (and stop) the embedded emulator if needed.

    Raises:
        FleetUnavailableError: ``options.redis_url`` is set and Redis cannot be reached
            (the message shows the URL with its password redacted).
    """
    meter = RateWaitMeter()
    timeout = options.timeout
    if wants_embedded(options):
        from ..testing import run_emulator

        reason = "--emulator" if options.emulator else f"no {ENV_API_KEY} and no --base-url"
        async with (
            run_emulator(time_scale=options.time_scale, record_requests=False) as emu,
            AsyncAurous(
                emu.api_key, base_url=emu.base_url, clock=meter, timeout=options.timeout
            ) as client,
        ):
            notice(
                f"{reason}: using the embedded Aurous emulator ({options.time_scale:g}x speed; "
                "no account, no network, nothing charged)"
            )
            yield Target(client, EMBEDDED, True, meter)
        return
    base_url = options.base_url or os.environ.get(ENV_BASE_URL)
    key = options.api_key or os.environ.get(ENV_API_KEY)
    if not key:
        raise AurousError(f"--base-url needs an API key: set {ENV_API_KEY} or pass --api-key")
    async with AsyncAurous(
        key, base_url=base_url, clock=meter, timeout=timeout, redis_url=options.redis_url
    ) as client:
        yield Target(client, client.base_url, False, meter)
