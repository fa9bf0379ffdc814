"""The one request pipeline every API call goes through.

Per attempt: governor acquire -> transport -> observe rate-limit headers -> success, or
decode the error envelope -> retry decision. The logical call, every attempt and retry
wait included, runs under one deadline (``_deadline``); a wait for a rate-limit permit
pauses it (pacing is the governor's job, not a failure) and is bounded by
``max_queue_wait`` instead.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, TypeVar

import attrs
from multidict import CIMultiDict, CIMultiDictProxy, istr

from . import _json, _logging
from ._clock import Clock
from ._config import RetryPolicy
from ._deadline import Deadlines
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AurousError,
    OutcomeUnknownError,
    error_from_response,
)
from ._ratelimit import UNMETERED, Governor, Permit, RateLimit, bucket_for, parse_retry_after
from ._retry import RetryPlan
from ._transport import BodySink, Multipart, Response, Transport, same_origin

__all__ = [
    "Call",
    "Reply",
    "Requester",
    "invalid_body_error",
    "new_idempotency_key",
    "redact_key",
]

logger = logging.getLogger("aurous_async")

T = TypeVar("T")

_IDEMPOTENCY_HEADER = "Idempotency-Key"
# Response headers read on every call (``istr``: looked up without case folding).
_DEPRECATED = istr("Aurous-Deprecated")
_SUNSET = istr("Sunset")
_VERSION = istr("Aurous-Version")
_REDACTED = b"[redacted]"


def new_idempotency_key() -> str:
    """A fresh key for one logical create (UUID4, as the contract recommends)."""
    return str(uuid.uuid4())


class Call(NamedTuple):
    """One logical API call, as a resource method describes it (a tuple: one per call;
    build it with keywords).

    Attributes:
        method, path: the HTTP method and either an API path (``/v1/...``) or an absolute
            URL (output and upload URLs).
        route: the path template (``/v1/images/{id}``), used to name the route in logs and
            deprecation warnings without leaking ids.
        params: query parameters, in order (repeated names allowed).
        json: a JSON-able request body.
        content: raw bytes or a multipart form instead of JSON.
        headers: extra request headers.
        idempotent: repeating the call cannot change the outcome (GET, estimate, cancel,
            PATCH, ...), so any transient failure may be retried.
        idempotency_key: sent as ``Idempotency-Key``; makes a create safe to retry.
        creates: the call creates or changes something, so an unknown outcome after the
            last attempt is reported as ``OutcomeUnknownError``.
        authenticated: send the API key (``False`` for signed output and upload URLs).
        metered: goes through the rate governor (``False`` for unmetered routes).
        synthesize: picks the ``characters_synthesize`` bucket for character create.
        expect_json: a 2xx must carry a JSON body (``False`` for output bytes).
        timeout, api_version: per-call overrides of the client's settings.
    """

    method: str
    path: str
    route: str
    params: Sequence[tuple[str, str]] = ()
    json: object = None
    content: bytes | Multipart | None = None
    headers: Mapping[str, str] = MappingProxyType({})
    idempotent: bool = False
    idempotency_key: str | None = None
    creates: bool = False
    authenticated: bool = True
    metered: bool = True
    synthesize: bool = False
    expect_json: bool = True
    timeout: float | None = None
    api_version: str | None = None


class Reply(NamedTuple):
    """A successful response, its decoded JSON body (``None`` for raw bytes) and the call
    that produced it (to name the route when the body does not fit its model)."""

    response: Response
    data: object
    call: Call

    @property
    def request_id(self) -> str | None:
        return self.response.request_id

    def __repr__(self) -> str:  # the body may hold a secret (a webhook signing secret)
        return f"Reply(response={self.response!r})"


class _Progress:
    """What happened so far in one logical call (one per call: a plain slotted class)."""

    __slots__ = ("ambiguous", "attempts", "last_error", "queued")

    def __init__(self) -> None:
        self.attempts = 0
        #: Seconds (of the client's clock) spent waiting for rate-limit permits.
        self.queued = 0.0
        #: An attempt may have reached the server and been processed.
        self.ambiguous = False
        self.last_error: AurousError | None = None


class Requester:
    """Sends ``Call``s: pacing, retries, the deadline, error decoding and warnings."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        api_version: str,
        timeout: float,
        retry: RetryPolicy,
        transport: Transport,
        governor: Governor,
        clock: Clock,
        max_queue_wait: float | None = None,
    ) -> None:
        _check_queue_wait(max_queue_wait)
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.retry = retry
        self.transport = transport
        self.governor = governor
        self.clock = clock
        self.max_queue_wait = max_queue_wait
        self._deadlines = Deadlines()
        self._warned_routes: set[str] = set()
        self._logged_versions: set[tuple[str, str]] = set()
        # Per-call work done once: the retry policy with a call's deadline, and the
        # request headers of calls that add none of their own.
        self._timed_policy: tuple[RetryPolicy, float, RetryPolicy] | None = None
        self._plain_headers: dict[tuple[bool, bool, str], Mapping[str, str]] = {}

    def __repr__(self) -> str:
        return f"<Requester base_url={self.base_url!r} api_version={self.api_version!r}>"

    # -- the pipeline ------------------------------------------------------------------
    def send(self, call: Call) -> Coroutine[Any, Any, Reply]:
        """Run ``call`` to a 2xx response.

        Raises:
            APIStatusError: the server answered with an error that is not retried, or the
                retry budget ran out (the last error is raised).
            APIConnectionError / APITimeoutError: likewise for transport failures, and
                the call's deadline.
            OutcomeUnknownError: a create whose last attempt may or may not have been
                processed; retry with the same ``idempotency_key`` to find out safely.
            APIResponseValidationError: a 2xx body that is still not JSON after the
                retries (with ``send_and_decode``: also one that does not decode).
            ResponseTooLargeError: the answer is larger than ``max_response_bytes``.
        """
        return self._run(call, _reply_itself, _json.loads)

    def send_and_decode(
        self,
        call: Call,
        decode: Callable[[Reply], T],
        parse: Callable[[bytes], object] = _json.loads,
    ) -> Coroutine[Any, Any, T]:
        """``send``, then ``decode`` the reply, in the same coroutine (the usual call).

        ``parse`` turns a 2xx body into the reply's ``data`` and raises ``ValueError``
        for a body that is not JSON (a model's typed parser may hand ``decode`` the model
        itself; see ``_typed_body``).
        """
        return self._run(call, decode, parse)

    def send_to(self, call: Call, sink: BodySink) -> Coroutine[Any, Any, Reply]:
        """``send`` for output bytes, the 2xx body handed to ``sink`` in chunks as it
        arrives (never held whole); every attempt asks ``sink`` for its headers, so a
        retry after a body cut short can resume with ``Range``. Raises as ``send``."""
        return self._run(call, _reply_itself, _json.loads, sink)

    # One coroutine from the deadline to the transport: every await level between the
    # caller and the socket costs CPU on each suspension of every request.
    async def _run(
        self,
        call: Call,
        decode: Callable[[Reply], T],
        parse: Callable[[bytes], object],
        sink: BodySink | None = None,
    ) -> T:
        timeout = self.timeout if call.timeout is None else call.timeout
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        progress = _Progress()
        # While the only await is a first attempt that the transport's own timeout ends
        # sooner, the deadline need not be armed; it is before any other wait.
        deferred = call.expect_json and self.transport.attempt_bound < timeout
        try:
            with self._deadlines.limit(
                timeout, deferred=deferred, loop=self.transport.loop
            ) as deadline:
                # The retry plan is made on the first failure; its deadline counts from here.
                started_at = self.clock.time()
                plan: RetryPlan | None = None
                if "://" not in call.path:
                    url = self.base_url + call.path
                else:
                    url = call.path
                    if call.authenticated and not same_origin(url, self.base_url):
                        # The key goes to the API's origin only, whatever URL a
                        # response named (an output URL on a storage host).
                        call = call._replace(authenticated=False)
                headers = self._headers(call)
                bucket = (
                    _bucket_of(call.method, call.route, call.synthesize)
                    if call.metered
                    else UNMETERED
                )
                governor = self.governor
                while True:
                    progress.attempts += 1
                    permit = governor.try_acquire(
                        bucket, started_at if progress.attempts == 1 else None
                    )
                    if permit is None:
                        permit = await self._queue(bucket, deadline, progress)
                        _logging.paused(
                            call.method, call.route, bucket, progress.attempts, progress.queued
                        )
                    response: Response | None = None
                    failure: APIConnectionError | None = None
                    try:
                        response = await self.transport.send(
                            call.method,
                            url,
                            headers=headers,
                            params=call.params,
                            json_body=call.json,
                            content=call.content,
                            download=not call.expect_json,
                            sink=sink,
                        )
                    except APIConnectionError as exc:
                        failure = exc
                    finally:
                        # Every permit goes back exactly once, also when the deadline or
                        # the caller cancels us.
                        self._hand_back(bucket, permit, response, failure, progress)
                    if response is not None:
                        received = self._received(call, response, parse)
                        if isinstance(received, Reply):
                            if logger.isEnabledFor(logging.DEBUG):
                                _logging.call_finished(
                                    call.method,
                                    call.route,
                                    response.status,
                                    response.request_id,
                                    progress.attempts,
                                    progress.queued,
                                )
                            try:
                                return decode(received)
                            except AurousError:
                                raise
                            except Exception as exc:
                                # Whatever the server sent, a body that does not decode
                                # is a typed error; a try costs nothing when none is raised.
                                raise invalid_body_error(call, response, exc) from exc
                        failure = received
                    if plan is None:
                        plan = RetryPlan(
                            self._policy_with(timeout),
                            _QueueFreeClock(self.clock, progress),
                            idempotent=call.idempotent or call.idempotency_key is not None,
                            started_at=started_at,
                        )
                    wait = self._retry_wait(call, plan, response, failure, progress)
                    deadline.arm()
                    await self.clock.sleep(wait)
        except TimeoutError as exc:
            if isinstance(exc, AurousError):
                raise
            error = APITimeoutError(
                f"{call.method} {call.route}: no answer within the {timeout:g} s deadline "
                f"({progress.attempts} attempt(s))"
            )
            error.__cause__ = exc
            final = self._final(call, progress, error)
            raise final from final.__cause__

    async def _queue(self, bucket: str, deadline: _Pausable, progress: _Progress) -> Permit:
        """Wait for a permit with the call's deadline paused, within ``max_queue_wait``."""
        max_wait = _QUEUE_WAIT.get().get(self, self.max_queue_wait)
        left = deadline.pause()
        entered_at = self.clock.time()
        try:
            return await self.governor.acquire(bucket, max_wait=max_wait)
        finally:
            progress.queued += self.clock.time() - entered_at
            deadline.resume(left)

    @contextlib.contextmanager
    def queue_wait_bound(self, max_wait: float | None) -> Iterator[None]:
        """Bound the permit wait of this requester's calls made in the block (and in
        tasks started from it) by ``max_wait`` seconds; ``None``: no bound."""
        _check_queue_wait(max_wait)
        token = _QUEUE_WAIT.set({**_QUEUE_WAIT.get(), self: max_wait})
        try:
            yield
        finally:
            _QUEUE_WAIT.reset(token)

    def _hand_back(
        self,
        bucket: str,
        permit: Permit,
        response: Response | None,
        failure: APIConnectionError | None,
        progress: _Progress,
    ) -> None:
        """Return an attempt's permit to the governor with what the response said."""
        if response is None:
            if failure is None:
                # Interrupted on the wire (the deadline, or the caller cancelled).
                progress.ambiguous = True
            self.governor.observe(bucket, None, None, permit=permit)
            return
        now = self.clock.time()
        self.governor.observe(
            bucket,
            RateLimit.from_headers(response.headers, now=now),
            response.status,
            permit=permit,
            now=now,
        )

    def _received(
        self,
        call: Call,
        response: Response,
        parse: Callable[[bytes], object],
    ) -> Reply | APIConnectionError | None:
        """A 2xx as a ``Reply``; a garbled 2xx body as a failure; ``None`` for an error."""
        self._inspect_headers(call, response)
        if not 200 <= response.status < 300:
            return None
        if not call.expect_json:
            return Reply(response, None, call)
        try:
            # ``tuple.__new__`` skips the NamedTuple's generated ``__new__`` (~0.2 us a call).
            return tuple.__new__(Reply, (response, parse(response.body), call))
        except (ValueError, RecursionError):
            pass
        # A garbled 2xx body is a transport failure in disguise: the request was
        # processed and the answer lost (an ``APIConnectionError``, retried as one).
        return APIResponseValidationError(
            f"{call.method} {call.route}: the {response.status} response body is not valid JSON",
            route=f"{call.method} {call.route}",
            status=response.status,
            request_id=response.request_id,
        )

    def _retry_wait(
        self,
        call: Call,
        plan: RetryPlan,
        response: Response | None,
        failure: APIConnectionError | None,
        progress: _Progress,
    ) -> float:
        """Seconds until the next attempt; raises the final error when there is none."""
        if failure is not None:
            progress.last_error = failure
            if failure.maybe_sent:
                progress.ambiguous = True
            wait = plan.next_wait(connection_error=True, maybe_sent=failure.maybe_sent)
        else:
            assert response is not None
            error = self._error(response, call.idempotency_key)
            progress.last_error = error
            if response.status >= 500:
                progress.ambiguous = True
            wait = plan.next_wait(
                status=response.status,
                error_code=error.code,
                retry_after=parse_retry_after(
                    response.headers.get("Retry-After"), now=self.clock.time()
                ),
            )
        last = progress.last_error
        if wait is None:
            raise self._final(call, progress, last)
        _logging.retrying(call.method, call.route, last, progress.attempts, progress.queued, wait)
        return wait

    def _final(self, call: Call, progress: _Progress, error: AurousError) -> AurousError:
        """The error to raise when the call gives up."""
        if error.idempotency_key is None:
            error.idempotency_key = call.idempotency_key
        if call.creates and progress.ambiguous and _inconclusive(error):
            unknown = OutcomeUnknownError(
                f"{call.method} {call.route}: the outcome is unknown after "
                f"{progress.attempts} attempt(s) (last: {error}); retry with the same "
                f"idempotency key to resolve it safely",
                idempotency_key=call.idempotency_key,
                request_id=getattr(error, "request_id", None),
            )
            unknown.__cause__ = error
            _logging.call_failed(
                call.method, call.route, unknown, progress.attempts, progress.queued
            )
            return unknown
        _logging.call_failed(call.method, call.route, error, progress.attempts, progress.queued)
        return error

    # -- helpers -----------------------------------------------------------------------
    def _policy_with(self, budget: float) -> RetryPolicy:
        """``self.retry`` with ``budget`` as its deadline (cached: calls mostly share one)."""
        cached = self._timed_policy
        if cached is None or cached[0] is not self.retry or cached[1] != budget:
            policy = attrs.evolve(self.retry, timeout=budget)
            self._timed_policy = cached = (self.retry, budget, policy)
        return cached[2]

    def _headers(self, call: Call) -> Mapping[str, str]:
        if call.idempotency_key is None and not call.headers:
            # Shared by every call with the same settings: the transport only reads it.
            key = (call.expect_json, call.authenticated, call.api_version or self.api_version)
            headers = self._plain_headers.get(key)
            if headers is None:
                if len(self._plain_headers) >= 64:  # many per-call api_versions: start over
                    self._plain_headers.clear()
                # Read-only, and a multidict already: aiohttp copies it without converting.
                headers = CIMultiDictProxy(CIMultiDict(self._build_headers(call)))
                self._plain_headers[key] = headers
            return headers
        return self._build_headers(call)

    def _build_headers(self, call: Call) -> dict[str, str]:
        headers = {"Accept": "application/json"} if call.expect_json else {}
        if call.authenticated:
            headers["X-Api-Key"] = self._api_key
            headers["Aurous-Version"] = call.api_version or self.api_version
        if call.idempotency_key is not None:
            headers[_IDEMPOTENCY_HEADER] = call.idempotency_key
        headers.update(call.headers)
        return headers

    def _error(self, response: Response, idempotency_key: str | None) -> APIStatusError:
        body = redact_key(response.body, self._api_key)
        return error_from_response(
            response.status, response.headers, body, idempotency_key=idempotency_key
        )

    def _inspect_headers(self, call: Call, response: Response) -> None:
        history = response.history
        for headers in (*history, response.headers) if history else (response.headers,):
            deprecated = headers.get(_DEPRECATED)
            sunset = headers.get(_SUNSET)
            if (deprecated or sunset) and call.route not in self._warned_routes:
                self._warned_routes.add(call.route)
                detail = f"Aurous-Deprecated: {deprecated}" if deprecated else "deprecated"
                if sunset:
                    detail += f"; Sunset: {sunset}"
                warnings.warn(
                    f"{call.method} {call.route} is deprecated by the API ({detail})",
                    DeprecationWarning,
                    stacklevel=2,
                )
                _logging.deprecated(
                    call.method, call.route, response.status, response.request_id, detail
                )
        if not call.authenticated:
            return
        pinned = call.api_version or self.api_version
        echoed = response.headers.get(_VERSION)
        if echoed and echoed != pinned and (pinned, echoed) not in self._logged_versions:
            self._logged_versions.add((pinned, echoed))
            logger.warning(
                "Aurous-Version %s was requested but the server applied %s", pinned, echoed
            )


class _Pausable(Protocol):
    """What the requester uses of a call's deadline to keep a permit wait out of it."""

    def pause(self) -> float | None: ...
    def resume(self, left: float | None) -> None: ...


#: Per-block ``max_queue_wait`` overrides, by requester (``Requester.queue_wait_bound``).
_QUEUE_WAIT: ContextVar[Mapping[Requester, float | None]] = ContextVar(
    "aurous_async_queue_wait", default=MappingProxyType({})
)


def _check_queue_wait(max_wait: float | None) -> None:
    if max_wait is not None and not max_wait >= 0:
        raise ValueError(f"max_queue_wait must be >= 0 or None, got {max_wait!r}")


class _QueueFreeClock:
    """The client's clock minus one call's permit waits: the retry plan's deadline
    counts the call's own time only, as the call's deadline does."""

    __slots__ = ("_clock", "_progress")

    def __init__(self, clock: Clock, progress: _Progress) -> None:
        self._clock = clock
        self._progress = progress

    def time(self) -> float:
        return self._clock.time() - self._progress.queued

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)


def _reply_itself(reply: Reply) -> Reply:
    return reply


#: The shortest run of the API key's characters an error body may not show.
_KEY_FRAGMENT = 8


@functools.lru_cache(maxsize=8)
def _key_fragments(key: str) -> re.Pattern[bytes]:
    """Finds, at every position (overlapping), any 8 consecutive bytes of ``key``."""
    raw = key.encode()
    width = min(len(raw), _KEY_FRAGMENT)
    grams = sorted({raw[i : i + width] for i in range(len(raw) - width + 1)})
    return re.compile(b"(?=(" + b"|".join(re.escape(gram) for gram in grams) + b"))")


def redact_key(body: bytes, key: str) -> bytes:
    """``body`` with every run of 8 or more characters of the API key replaced.

    A server may echo the key, or a prefix of it ("al_live_SUPERSECRETK... is not
    valid"); whatever part of it a body shows is covered by the key's 8-byte windows
    found in it. A key shorter than that is replaced where it appears whole.
    """
    if not key or not body:
        return body
    covered: list[tuple[int, int]] = []
    for match in _key_fragments(key).finditer(body):
        start, end = match.start(), match.start() + len(match.group(1))
        if covered and start <= covered[-1][1]:
            covered[-1] = (covered[-1][0], end)
        else:
            covered.append((start, end))
    if not covered:
        return body
    parts: list[bytes] = []
    done = 0
    for start, end in covered:
        parts += (body[done:start], _REDACTED)
        done = end
    parts.append(body[done:])
    return b"".join(parts)


def invalid_body_error(
    call: Call, response: Response, error: BaseException
) -> APIResponseValidationError:
    """The error for a 2xx body that does not fit what ``call`` returns.

    Its message is the decoder's own (every mismatch named); ``path`` is the first
    mismatch's JSON path, ``$`` when the decoder named none (the body as a whole).
    """
    detail = str(error) or type(error).__name__
    found = _MISMATCH_PATH.search(detail)
    return APIResponseValidationError(
        f"{call.method} {call.route}: the {response.status} {detail}"
        if detail.startswith("response ")
        else f"{call.method} {call.route}: the {response.status} response does not fit: {detail}",
        route=f"{call.method} {call.route}",
        status=response.status,
        path=found.group(1) if found else "$",
        request_id=response.request_id,
        idempotency_key=call.idempotency_key,
    )


#: The path of a mismatch in the decoder's wording: ``... @ $.data[2].id; ...``.
_MISMATCH_PATH = re.compile(r" @ (\$[^\s;]*)")


def _inconclusive(error: AurousError) -> bool:
    """Whether the last error leaves open that an earlier attempt was processed.

    A definite client error (400, 402, 404, ...) cannot follow a processed attempt with
    the same idempotency key: the server would have replayed the original instead.
    """
    if isinstance(error, APIConnectionError):
        return True
    if isinstance(error, APIStatusError):
        return error.status >= 500 or error.status in (408, 409, 429)
    return False


@functools.lru_cache(maxsize=256)
def _bucket_of(method: str, route: str, synthesize: bool) -> str:
    # Keyed by the route template, not the concrete path: a bucket depends only on the
    # path's shape, and the templates are few, so every call after the first is a hit.
    return bucket_for(method, _path_of(route), synthesize=synthesize)


def _path_of(path_or_url: str) -> str:
    if "://" not in path_or_url:
        return path_or_url.split("?", 1)[0]
    rest = path_or_url.split("://", 1)[1]
    slash = rest.find("/")
    return rest[slash:].split("?", 1)[0] if slash >= 0 else "/"
