"""Rate limits: header parsing (pure), the documented buckets, and the client-side governor.

The API meters each team with token buckets (contract §4.1, A9). Every response says,
for the bucket of its route, the capacity (``X-RateLimit-Limit``), the tokens left after
the request (``X-RateLimit-Remaining``) and when the bucket is full again
(``X-RateLimit-Reset``, epoch seconds); a 429 adds ``Retry-After``. The ``Governor`` keeps
a model of every bucket, shared by all tasks of one client, and paces requests so that
the capacity and refill are used in full without a 429.
"""

from __future__ import annotations

import email.utils
import functools
import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from datetime import timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

import anyio
import attrs
from multidict import CIMultiDict, CIMultiDictProxy, istr

from ._clock import Clock, SystemClock

if TYPE_CHECKING:
    from ._errors import RateLimitQueueTimeoutError

__all__ = [
    "DOCUMENTED_BUCKETS",
    "UNMETERED",
    "BucketSpec",
    "BucketState",
    "Governor",
    "Permit",
    "RateLimit",
    "bucket_for",
    "get_header",
    "parse_retry_after",
]

#: Reset values below this are read as delta seconds (IETF drafts), above as epoch seconds.
_EPOCH_THRESHOLD = 1_000_000_000.0
#: Header mappings whose ``get`` already matches names case-insensitively.
_CASE_INSENSITIVE = (CIMultiDictProxy, CIMultiDict)


# --- pure header parsing ---------------------------------------------------------------

# ``istr`` names: a case-insensitive mapping looks them up without folding them first.
_LIMIT = (istr("X-RateLimit-Limit"), istr("RateLimit-Limit"))
_REMAINING = (istr("X-RateLimit-Remaining"), istr("RateLimit-Remaining"))
_RESET = (istr("X-RateLimit-Reset"), istr("RateLimit-Reset"))
_RETRY_AFTER = istr("Retry-After")


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Return one header value, matching the name case-insensitively, or ``None``."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def _parse_number(value: str | None) -> float | None:
    """The first item of a header value as a finite non-negative number, else ``None``."""
    if value is None:
        return None
    if len(value) <= 15 and value.isdigit() and value.isascii():
        return float(value)  # the usual plain count (exact: far below 2**53)
    # IETF drafts allow "120, 120;w=60": the first item is the current value.
    token = value.split(",", 1)[0].split(";", 1)[0].strip()
    try:
        number = float(token)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _parse_count(value: str | None) -> int | None:
    if value is not None and len(value) <= 15 and value.isdigit() and value.isascii():
        return int(value)  # what the general path gives for a plain count, only faster
    number = _parse_number(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse ``Retry-After``: delta seconds or an HTTP-date; ``None`` if absent or garbage.

    Args:
        value: the header value.
        now: the current epoch time, needed only for the HTTP-date form (defaults to
            the system time).

    Returns:
        Seconds to wait, never negative.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text[0].isdigit() or text[0] in "+-.":
        number = _parse_number(text)
        return number
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = _system_time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _system_time() -> float:
    return SystemClock().time()


class RateLimit(NamedTuple):
    """What one response said about its rate-limit bucket (a tuple: one per response).

    Attributes:
        limit: the bucket capacity (burst).
        remaining: tokens left after the request.
        reset_at: epoch seconds at which the bucket is full again.
        retry_after: seconds to wait before the next request (429 only).
    """

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    retry_after: float | None = None

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str], *, now: float | None = None
    ) -> RateLimit | None:
        """Read ``X-RateLimit-*`` (or unprefixed ``RateLimit-*``) and ``Retry-After``.

        Garbage values are ignored one by one; ``None`` when nothing usable is present.

        Args:
            headers: the response headers (any mapping; names match case-insensitively).
            now: the current epoch time of the governor's clock. It is used only for a
                ``Retry-After`` HTTP-date or a delta-seconds ``RateLimit-Reset``
                (defaults to the system time).
        """

        get: Callable[[str], str | None]
        if isinstance(headers, _CASE_INSENSITIVE):
            # Its own lookup already ignores case: a miss needs no scan of every name.
            get = headers.get
        else:
            get = functools.partial(get_header, headers)
        limit_text = get(_LIMIT[0])
        remaining_text = get(_REMAINING[0])
        reset_text = get(_RESET[0])
        # The unprefixed names are looked up only when the X- ones are missing.
        limit = _parse_count(get(_LIMIT[1]) if limit_text is None else limit_text)
        remaining = _parse_count(get(_REMAINING[1]) if remaining_text is None else remaining_text)
        reset = _parse_number(get(_RESET[1]) if reset_text is None else reset_text)
        retry_text = get(_RETRY_AFTER)
        retry_after = None if retry_text is None else parse_retry_after(retry_text, now=now)
        if reset is not None and reset < _EPOCH_THRESHOLD:
            reset += _system_time() if now is None else now
        if limit is None and remaining is None and reset is None and retry_after is None:
            return None
        # ``tuple.__new__`` skips the NamedTuple's generated ``__new__`` (~0.2 us a call).
        return tuple.__new__(cls, (limit, remaining, reset, retry_after))


# --- buckets ---------------------------------------------------------------------------


@attrs.frozen
class BucketSpec:
    """A token bucket: ``capacity`` tokens, refilled continuously."""

    capacity: int
    refill_per_second: float


#: Contract §4.1. ``webhooks_test`` burst and ``default`` are project choices.
DOCUMENTED_BUCKETS: Mapping[str, BucketSpec] = MappingProxyType(
    {
        "get": BucketSpec(1200, 600 / 60),
        "images_post": BucketSpec(120, 60 / 60),
        "estimate_post": BucketSpec(240, 120 / 60),
        "files": BucketSpec(60, 30 / 60),
        "webhook_endpoints": BucketSpec(10, 10 / 60),
        "webhooks_test": BucketSpec(30, 30 / 60),
        "characters_post": BucketSpec(60, 30 / 60),
        "characters_synthesize": BucketSpec(12, 6 / 60),
        "characters_get": BucketSpec(240, 120 / 60),
        "default": BucketSpec(120, 60 / 60),
    }
)

#: The pseudo-bucket of routes the API does not meter (output bytes, upload PUT).
UNMETERED = "unmetered"


def bucket_for(method: str, path: str, *, synthesize: bool = False) -> str:
    """Name the rate-limit bucket of a request (see docs/architecture.md).

    Args:
        method: the HTTP method.
        path: the concrete path, e.g. ``/v1/images/img_x/cancel`` (a query is ignored).
        synthesize: for ``POST /v1/characters``: the synthesize flow (``generate``).

    Returns:
        A key of ``DOCUMENTED_BUCKETS``, or ``UNMETERED``.
    """
    verb = method.upper()
    parts = [p for p in path.split("?", 1)[0].split("#", 1)[0].split("/") if p]
    if "v1" in parts:
        parts = parts[parts.index("v1") + 1 :]
    if not parts or verb == "PUT":
        return UNMETERED
    head, n = parts[0], len(parts)
    if verb in ("GET", "HEAD"):
        if (head == "images" and n == 4 and parts[2] == "output") or (
            head == "videos" and n == 3 and parts[2] == "output"
        ):
            return UNMETERED
        return "characters_get" if head == "characters" else "get"
    if head == "characters":
        return _character_bucket(verb, parts, synthesize)
    if verb != "POST":
        return "default"
    if head in ("images", "videos") and n == 2 and parts[1] == "estimate":
        return "estimate_post"
    if (head in ("images", "videos") and n == 1) or (
        head == "images" and n == 3 and parts[2] == "cancel"
    ):
        return "images_post"
    if head == "files" and n == 1:
        return "files"
    if head == "webhook_endpoints":
        if n == 1:
            return "webhook_endpoints"
        if n == 3 and parts[2] == "test":
            return "webhooks_test"
    return "default"


def _character_bucket(verb: str, parts: list[str], synthesize: bool) -> str:
    n = len(parts)
    if verb == "POST" and n == 1:
        return "characters_synthesize" if synthesize else "characters_post"
    if verb == "POST" and (
        (n == 4 and parts[2:] == ["refs", "regenerate"]) or (n == 3 and parts[2] == "resynthesize")
    ):
        return "characters_synthesize"
    return "characters_post"


# --- the governor ----------------------------------------------------------------------

#: A ``Reset`` further away than this many full refills (at the documented or the learned
#: rate, whichever is slower) is implausible: it teaches nothing about the rate.
_IMPLAUSIBLE_REFILLS = 4.0
#: The full-refill time assumed for a bucket the SDK does not document (the slowest
#: documented bucket's).
_UNKNOWN_REFILL_SECONDS = 120.0
#: Seconds a bucket's first request may take before the others stop waiting for its
#: answer (a hung request would otherwise hold them back until its own timeout).
_PROBE_PATIENCE = 5.0
#: ``Reset`` and ``Retry-After`` count whole seconds: a wait may be this much longer
#: than the bucket arithmetic says.
_ROUNDING = 1.0


@attrs.frozen
class BucketState:
    """The governor's live view of one bucket (``client.rate_limits``).

    Attributes:
        bucket: the bucket name.
        limit: the capacity, once known.
        remaining: tokens the governor may still hand out now.
        reset_at: epoch seconds when the local model is full again.
        paused_until: epoch seconds until which a 429 paused the bucket, else ``None``.
        in_flight: requests sent and not answered yet.
        refill_per_second: the server's refill rate as learned: the documented one
            until the headers disagree, then the middle of what they prove (the governor
            paces at the lower end of that).
        queued: calls waiting for a permit.
    """

    bucket: str
    limit: int | None
    remaining: int | None
    reset_at: float | None
    paused_until: float | None
    in_flight: int
    refill_per_second: float | None
    queued: int = 0


class Permit(NamedTuple):
    """One granted request slot; hand it back to ``Governor.observe``.

    A tuple, as one is made per request. It snapshots the bucket's counters at the
    grant, which lets ``observe`` tell which other requests the server may not have
    counted when it wrote its headers.
    """

    bucket: str
    seq: int
    acquired_at: float
    settled_before: int
    refused_before: int


class _Waiter:
    """One queued ``acquire``: told when it is the head of the queue."""

    __slots__ = ("ready", "wake")

    def __init__(self) -> None:
        self.ready = anyio.Event()
        #: The sleep of a waiter with a bounded wait, cut short when it becomes the head.
        self.wake: anyio.CancelScope | None = None

    def call(self) -> None:
        self.ready.set()
        if self.wake is not None:
            self.wake.cancel()


class _Bucket:
    """Mutable model of one bucket; only the governor touches it.

    ``level`` (as of ``updated``) is a lower bound of the server's token level, were
    every answered request counted when its answer arrived (the latest it can have
    been counted) and no request in flight counted yet: counting later can only lose
    refill at the cap, never gain, so the bound holds. What may be granted is the
    refilled level minus the requests in flight, each of which may still take a token.

    The refill ``rate`` is the documented one (``guess``) while the server's headers
    allow it, else the lower bound ``rate_low`` they prove (see ``learn``).
    """

    def __init__(self, name: str, spec: BucketSpec | None, now: float) -> None:
        self.name = name
        self.spec = spec
        self.capacity: int | None = None
        self.guess: float | None = None
        self.rate: float | None = None
        self.rate_low = 0.0
        self.rate_high = math.inf
        self.refill_time = _UNKNOWN_REFILL_SECONDS
        if spec is not None:
            self.resize(spec.capacity)
        # Assume a full bucket until the server says otherwise.
        self.level = float(self.capacity or 0)
        self.updated = now
        #: When the last answer arrived (an empty-looking bucket is probed after
        #: ``refill_time`` of silence).
        self.heard_at = now
        #: An answer arrived: until then only one request is let out.
        self.answered = False
        #: A ``Remaining`` was applied to ``level``.
        self.synced = False
        self.paused_until = -math.inf
        self.issued = 0
        self.settled = 0
        self.refused = 0
        self.in_flight: dict[int, Permit] = {}
        self.waiters: deque[_Waiter] = deque()
        self.wake: anyio.CancelScope | None = None

    @property
    def modelled(self) -> bool:
        return self.capacity is not None and self.rate is not None

    def resize(self, capacity: int) -> None:
        """Take a (new) capacity: the documented rate, scaled down to a smaller
        capacity, is the first guess again, and what was proven about the rate goes."""
        self.capacity = capacity
        spec = self.spec
        if spec is not None:
            documented = spec.refill_per_second * min(1.0, capacity / spec.capacity)
        else:
            documented = capacity / _UNKNOWN_REFILL_SECONDS
        self.guess = self.rate = documented
        self.refill_time = capacity / documented
        self.rate_low, self.rate_high = 0.0, math.inf

    def learn(
        self, rate_limit: RateLimit, granted_at: float | None, now: float, *, refused: bool
    ) -> None:
        """Narrow the refill rate with one response's ``Reset``; pick the pacing rate.

        Each response bounds the rate (see ``_rate_bounds``); the bounds of all
        responses are intersected. A 429 proves the model too generous: the documented
        guess is dropped for good and only the 429's own bounds are kept (the server
        may have changed its rate). Bounds that contradict the ones held likewise
        replace them: the newest evidence wins.
        """
        low, high = self._rate_bounds(rate_limit, granted_at, now)
        if refused:
            self.guess = None
            self.rate_low, self.rate_high = low, high
        elif low > self.rate_high or high < self.rate_low:
            self.rate_low, self.rate_high = low, high
        else:
            if low > self.rate_low:
                self.rate_low = low
            if high < self.rate_high:
                self.rate_high = high
        self.rate = self._pacing_rate()

    def _rate_bounds(
        self, rate_limit: RateLimit, granted_at: float | None, now: float
    ) -> tuple[float, float]:
        """What one response proves about the refill rate: ``(low, high)``.

        The server counted the request at some instant in [grant, answer], held a level
        in [Remaining, Remaining + 1) after it, and rounds the instant it is full again
        up to ``Reset`` (whole seconds, so less than a second up). Hence
        ``(capacity - Remaining - 1) / (Reset - grant) <= rate
        < (capacity - Remaining) / (Reset - 1 - answer)``. Without the grant time (no
        permit) there is no lower bound: another request's grant could be later.
        """
        capacity = self.capacity
        reset_at, remaining = rate_limit.reset_at, rate_limit.remaining
        if capacity is None or reset_at is None or remaining is None:
            return 0.0, math.inf
        horizon = reset_at - (now if granted_at is None else granted_at)
        slowest = self.refill_time
        if self.rate is not None and capacity / self.rate > slowest:
            slowest = capacity / self.rate
        if horizon > _IMPLAUSIBLE_REFILLS * slowest:
            return 0.0, math.inf
        deficit = capacity - remaining if remaining < capacity else 0
        low = 0.0
        if deficit > 1 and horizon > 0 and granted_at is not None:
            low = (deficit - 1) / horizon
        span = reset_at - 1.0 - now
        high = deficit / span if deficit >= 1 and span > 0 else math.inf
        return low, high

    def _pacing_rate(self) -> float:
        guess, low, high = self.guess, self.rate_low, self.rate_high
        if guess is not None and low <= guess <= high:
            return guess
        if low > 0:
            return low
        assert self.capacity is not None
        documented = self.capacity / self.refill_time
        fallback = guess if guess is not None else documented
        # Nothing proven below: half the proven ceiling keeps clear of it.
        return fallback if fallback <= high / 2 else high / 2

    def learned_rate(self) -> float | None:
        """The best estimate of the server's rate: the pacing rate, or, when that is the
        proven lower bound, the middle of what the headers prove."""
        rate, low, high = self.rate, self.rate_low, self.rate_high
        if rate is not None and rate == low and high < math.inf:
            return (low + high) / 2
        return rate

    def level_at(self, now: float) -> float:
        """The level refilled to ``now``; refill starts ``_LAG`` after each update."""
        capacity = float(self.capacity or 0)
        elapsed = now - self.updated - _LAG
        if self.rate is None or elapsed <= 0 or self.level >= capacity:
            return self.level
        level = self.level + self.rate * elapsed
        return capacity if level > capacity else level

    def available_at(self, now: float) -> float:
        return self.level_at(now) - len(self.in_flight)

    def set_level(self, level: float, now: float) -> None:
        self.level = level
        self.updated = now

    def settle(self, seq: int, *, consumed: bool, now: float) -> bool:
        """Take a permit out of flight; ``False`` if it was not in flight."""
        if self.in_flight.pop(seq, None) is None:
            return False
        self.settled += 1
        if consumed and self.rate is not None and self.capacity is not None:
            self.level = self.level_at(now) - 1.0
            self.updated = now
        return True


# The model's refill lags the server's by this many seconds after each update, so the
# server holds a little more than the model whenever a grant is made: its own float
# arithmetic (epoch seconds near 1.7e9 resolve to ~2.4e-7 s) may not round our way.
_LAG = 1e-4


class Governor:
    """Paces requests per bucket so the API never has to answer 429.

    One governor is shared by all tasks of a client. Each request takes a permit with
    ``acquire`` (waiting, first come first served, until a token is available and no
    429 pause runs) and hands it back with ``observe`` once the attempt has ended;
    ``snapshot`` shows the model. A shared (fleet) store can sit behind the same three
    calls.

    The model (see ``_Bucket``): a lower bound of the server's level, refilled at the
    bucket's rate up to its capacity, minus the requests in flight. In the
    single-client case it never exceeds what the server holds, so nothing is refused,
    and it follows the server closely, so burst and refill are used in full. Each
    response's ``Remaining`` is authoritative but stale by the requests the server may
    have counted after writing it, or not yet; a permit records how many requests were
    settled when it was granted, which bounds those:

    * a safe floor: ``Remaining`` minus every other request not settled before this
      one was granted (refused ones excepted). The model is raised to it, which
      recovers from pessimism or learns a larger capacity, and never beyond it;
    * the model is cut to that floor when it offers more than the server can hold
      (``Remaining + 1`` plus the refill since the grant), e.g. when another process
      shares the team's bucket, and on every 429;
    * a 429 also pauses the whole bucket until ``Retry-After`` (at most one full
      refill) plus a non-negative random jitter.

    The documented table is a first guess. Capacity comes from ``Limit``; the refill
    rate is bounded by every response's ``Reset`` (``_Bucket.learn``), and the
    documented rate is kept only while those bounds allow it. Until a bucket's first
    answer, one request of it is in flight at a time (for ``_PROBE_PATIENCE`` seconds
    at most): that answer tells capacity and level. A bucket whose model stays empty is
    probed (one request) after a full refill without an answer, so no header can stop
    it for good.

    Args:
        clock: the time source (default: real time).
        buckets: known bucket specs by name.
        pause_jitter: at most this many seconds added at random to a 429 pause.
        rng: the random source of the jitter.
        in_flight_ttl: seconds after which a permit never observed is forgotten.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        buckets: Mapping[str, BucketSpec] = DOCUMENTED_BUCKETS,
        *,
        pause_jitter: float = 0.5,
        rng: random.Random | None = None,
        in_flight_ttl: float = 600.0,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._specs = buckets
        self._pause_jitter = pause_jitter
        self._rng = rng if rng is not None else random.Random()
        self._ttl = in_flight_ttl
        self._buckets: dict[str, _Bucket] = {}

    @property
    def clock(self) -> Clock:
        """The clock the governor paces with."""
        return self._clock

    def _bucket(self, name: str, now: float) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = _Bucket(name, self._specs.get(name), now)
        return bucket

    # -- acquire ------------------------------------------------------------------------

    async def acquire(self, bucket: str, *, max_wait: float | None = None) -> Permit:
        """Wait until a request of ``bucket`` may be sent, and take its token.

        Waiters are served in arrival order. Cancelling a waiting task takes nothing.
        Every permit must be handed back to ``observe`` exactly once: until then it
        holds its token.

        Args:
            bucket: the bucket's name.
            max_wait: the most seconds (of the governor's clock) to wait; ``None``
                waits as long as it takes.

        Raises:
            RateLimitQueueTimeoutError: the model already says the wait would exceed
                ``max_wait`` (raised at once), or ``max_wait`` passed in the queue.
        """
        permit = self.try_acquire(bucket)
        if permit is not None:
            return permit
        return await self._queue(self._bucket(bucket, self._clock.time()), max_wait)

    def try_acquire(self, bucket: str, now: float | None = None) -> Permit | None:
        """``acquire`` without waiting: the permit if one is free now, else ``None``.

        ``now``: the governor clock's time, if the caller just read it.
        """
        if now is None:
            now = self._clock.time()
        if bucket == UNMETERED:
            return Permit(bucket, 0, now, 0, 0)
        state = self._buckets.get(bucket) or self._bucket(bucket, now)
        if state.waiters:
            return None
        self._expire(state, now)
        if self._delay(state, now) <= 0:
            return self._take(state, now)
        return None

    def _estimate(self, state: _Bucket, now: float, ahead: int) -> float | None:
        paused = state.paused_until - now
        if state.rate is None or state.capacity is None or not state.answered:
            # Unknown bucket, or its first answer (a round trip) is still awaited.
            return paused if paused > 0 else None
        short = ahead + 1 + len(state.in_flight) - state.level_at(now)
        wait = short / state.rate if short > 0 else 0.0
        return max(wait, paused, 0.0)

    async def _queue(self, state: _Bucket, max_wait: float | None) -> Permit:
        now = self._clock.time()
        give_up_at = math.inf
        if max_wait is not None:
            estimate = self._estimate(state, now, len(state.waiters))
            if estimate is not None and estimate > max_wait:
                raise self._queue_timeout(state, len(state.waiters) + 1, max_wait, 0.0, now)
            give_up_at = now + max_wait
        entered_at = now
        waiter = _Waiter()
        state.waiters.append(waiter)
        try:
            if state.waiters[0] is not waiter:
                if max_wait is None:
                    await waiter.ready.wait()
                else:
                    await self._wait_turn(state, waiter, give_up_at, max_wait, entered_at)
            while True:
                now = self._clock.time()
                self._expire(state, now)
                delay = self._delay(state, now)
                if delay <= 0:
                    return self._take(state, now)
                if now + delay > give_up_at:
                    if now >= give_up_at:
                        raise self._queue_timeout(state, 1, max_wait, now - entered_at, now)
                    delay = give_up_at - now
                # ``observe`` cancels this scope when the model changes, to recompute.
                with anyio.CancelScope() as scope:
                    state.wake = scope
                    try:
                        await self._clock.sleep(delay)
                    finally:
                        state.wake = None
        finally:
            was_head = state.waiters[0] is waiter
            state.waiters.remove(waiter)
            if was_head and state.waiters:
                state.waiters[0].call()

    async def _wait_turn(
        self,
        state: _Bucket,
        waiter: _Waiter,
        give_up_at: float,
        max_wait: float,
        entered_at: float,
    ) -> None:
        """Wait to be the head of the queue, until ``give_up_at`` at most."""
        while not waiter.ready.is_set():
            now = self._clock.time()
            if now >= give_up_at:
                position = state.waiters.index(waiter) + 1
                raise self._queue_timeout(state, position, max_wait, now - entered_at, now)
            with anyio.CancelScope() as scope:
                waiter.wake = scope
                try:
                    await self._clock.sleep(give_up_at - now)
                finally:
                    waiter.wake = None

    def _queue_timeout(
        self,
        state: _Bucket,
        position: int,
        max_wait: float | None,
        waited: float,
        now: float,
    ) -> RateLimitQueueTimeoutError:
        # Imported here: the errors module imports this one (header helpers).
        from ._errors import RateLimitQueueTimeoutError

        assert max_wait is not None
        estimate = self._estimate(state, now, position - 1)
        ahead = f"about {estimate:.3g} s more" if estimate is not None else "an unknown time"
        return RateLimitQueueTimeoutError(
            f"no permit of the {state.name!r} rate-limit bucket within max_queue_wait="
            f"{max_wait:g} s (waited {waited:.3g} s): position {position} in its queue, "
            f"{ahead} to wait; nothing was sent",
            bucket=state.name,
            position=position,
            estimated_wait=estimate,
            max_queue_wait=max_wait,
            waited=waited,
        )

    def _expire(self, state: _Bucket, now: float) -> None:
        """Forget permits never handed back within the TTL (counted as consumed)."""
        in_flight = state.in_flight
        while in_flight:
            oldest = next(iter(in_flight.values()))
            if oldest.acquired_at >= now - self._ttl:
                break
            state.settle(oldest.seq, consumed=True, now=now)

    def _delay(self, state: _Bucket, now: float) -> float:
        """Seconds until a grant is possible; zero or less means now."""
        delay = state.paused_until - now
        if not state.answered and state.in_flight:
            # Into the unknown one request at a time: its answer (``observe`` wakes the
            # head) tells capacity and level. A first request that hangs holds the others
            # back only so long; then the documented model goes on alone.
            probe = next(iter(state.in_flight.values()))
            patience = probe.acquired_at + _PROBE_PATIENCE - now
            if patience > 0:
                return delay if delay > patience else patience
        if state.rate is not None and state.capacity is not None:
            needed = 1.0 + len(state.in_flight)
            if needed > state.capacity:
                # Held by requests in flight: ``observe`` wakes the head; poll meanwhile.
                delay = max(delay, 1.0 / state.rate)
            # ``level_at`` only ever adds refill: a level already high enough needs none.
            elif state.level < needed and state.level_at(now) < needed:
                ready_at = state.updated + _LAG + (needed - state.level) / state.rate
                probe_at = state.heard_at + state.refill_time + _ROUNDING
                if probe_at < ready_at and not state.in_flight:
                    # However empty the model says the bucket is, one request goes out
                    # after a full refill of silence: no header stops it for good.
                    if probe_at <= now:
                        return delay
                    ready_at = probe_at
                # A shorter sleep could leave an epoch-seconds clock where it was.
                delay = max(delay, ready_at - now, 1e-6)
        return delay

    def _take(self, state: _Bucket, now: float) -> Permit:
        state.issued += 1
        # ``tuple.__new__`` skips the NamedTuple's generated ``__new__`` (~0.2 us a call).
        permit = tuple.__new__(
            Permit, (state.name, state.issued, now, state.settled, state.refused)
        )
        state.in_flight[permit.seq] = permit
        return permit

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
        """Reconcile the model with one finished request.

        Args:
            bucket: the request's bucket.
            rate_limit: the response's ``RateLimit`` (``None`` if it had none).
            status: the HTTP status, ``None`` if no response arrived.
            permit: the request's permit from ``acquire``; without it the oldest
                permit in flight is assumed, which is safe but less exact.
            now: the governor clock's time, if the caller just read it.
        """
        if bucket == UNMETERED:
            return
        if now is None:
            now = self._clock.time()
        state = self._buckets.get(bucket) or self._bucket(bucket, now)
        self._expire(state, now)
        refused = status == 429
        # Only the caller's own permit dates the request's grant (``_rate_bounds``).
        granted_at = permit.acquired_at if permit is not None else None
        if permit is None and state.in_flight:
            permit = next(iter(state.in_flight.values()))
        if (
            permit is not None
            and state.settle(permit.seq, consumed=not refused, now=now)
            and refused
        ):
            state.refused += 1
        if status is not None:
            state.answered = True
            state.heard_at = now
        if refused and rate_limit is None:
            rate_limit = RateLimit(remaining=0)
        if rate_limit is not None:
            self._reconcile(state, rate_limit, refused, permit, granted_at, now)
        if refused:
            assert rate_limit is not None
            # Without Retry-After, one second: every documented bucket refills a token by
            # then, or the next 429 says how long. No token takes longer than a full
            # refill (plus a whole second: Retry-After counts whole seconds).
            wait = 1.0 if rate_limit.retry_after is None else rate_limit.retry_after
            if wait > state.refill_time + _ROUNDING:
                wait = state.refill_time + _ROUNDING
            until = now + wait + self._rng.uniform(0.0, self._pause_jitter)
            state.paused_until = max(state.paused_until, until)
        if state.level < 0 and state.modelled:
            # The server's level is never negative.
            state.set_level(0.0, now)
        if state.wake is not None:
            state.wake.cancel()

    def _reconcile(
        self,
        state: _Bucket,
        rate_limit: RateLimit,
        refused: bool,
        permit: Permit | None,
        granted_at: float | None,
        now: float,
    ) -> None:
        limit = rate_limit.limit
        if limit is not None and limit > 0 and limit != state.capacity:
            state.resize(limit)
        if state.capacity is not None:
            state.learn(rate_limit, granted_at, now, refused=refused)
        if state.capacity is None or state.rate is None or rate_limit.remaining is None:
            return
        remaining = rate_limit.remaining
        if remaining > state.capacity:
            remaining = state.capacity
        if permit is not None:
            # Requests the server may have counted after writing this header, or not yet:
            # every other one not settled before this grant, except those refused.
            others = state.issued - permit.settled_before - 1
            refusals = state.refused - permit.refused_before - (1 if refused else 0)
            unsettled = others - refusals if others > refusals else 0
        else:
            unsettled = len(state.in_flight)
        floor = float(remaining - unsettled)
        since_grant = now - permit.acquired_at if permit is not None else 0.0
        ceiling = remaining + 1.0 + (state.rate * since_grant if since_grant > 0 else 0.0)
        in_flight = len(state.in_flight)
        target = floor + in_flight
        level = state.level_at(now)
        too_high = not state.synced or refused or level - in_flight >= ceiling
        if too_high or level < target:
            state.set_level(target, now)
        state.synced = True

    # -- public view --------------------------------------------------------------------

    def pacing_rate(self, bucket: str) -> float | None:
        """The refill rate ``bucket`` is paced with: the documented rate, or a lower
        bound of the server's that its headers prove (``None`` before any is known).

        Unlike ``snapshot()``'s best estimate, it never lies above the server's rate, so
        a model shared with other processes may refill at it.
        """
        state = self._buckets.get(bucket)
        return None if state is None else state.rate

    def snapshot(self) -> Mapping[str, BucketState]:
        """The live state of every bucket used so far, by name."""
        now = self._clock.time()
        return {name: self._view(state, now) for name, state in sorted(self._buckets.items())}

    def _view(self, state: _Bucket, now: float) -> BucketState:
        remaining: int | None = None
        reset_at: float | None = None
        if state.capacity is not None and state.rate is not None:
            remaining = max(0, math.floor(state.available_at(now) + 1e-9))
            reset_at = now + max(0.0, state.capacity - state.available_at(now)) / state.rate
        return BucketState(
            bucket=state.name,
            limit=state.capacity,
            remaining=remaining,
            reset_at=reset_at,
            paused_until=state.paused_until if state.paused_until > now else None,
            in_flight=len(state.in_flight),
            refill_per_second=state.learned_rate(),
            queued=len(state.waiters),
        )
