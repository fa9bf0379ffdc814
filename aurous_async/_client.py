"""``AsyncAurous``: the client object users hold."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from ssl import SSLContext
from types import TracebackType
from typing import TYPE_CHECKING, cast

from ._clock import Clock, SystemClock
from ._config import (
    API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_LIMITS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_REDIS_URL,
    Limits,
    RetryPolicy,
    Timeouts,
)
from ._errors import AurousError
from ._polling import DEFAULT_POLLING, PollPolicy, PollScheduler
from ._ratelimit import DOCUMENTED_BUCKETS, BucketState, Governor
from ._resources.balance import Balance
from ._resources.characters import Characters
from ._resources.files import Files
from ._resources.images import Images
from ._resources.loras import Loras, VideoLoras
from ._resources.pricing import Pricing
from ._resources.team import Team
from ._resources.usage import Usage
from ._resources.videos import Videos
from ._resources.webhook_endpoints import WebhookEndpoints
from ._telemetry import client_parts
from ._transport import Transport
from ._version import __version__
from ._waits import JobRef
from ._webhook_receiver import WebhookReceiver
from ._webhook_verify import Event
from .models import Generation

if TYPE_CHECKING:
    from ._fleet._runtime import Fleet

__all__ = ["AsyncAurous"]

USER_AGENT = f"aurous-async/{__version__}"


class AsyncAurous:
    """An asyncio client for the Aurous Labs API.

    Use it as an async context manager (or call ``await client.close()``); it owns one
    pool of connections and one rate governor shared by every task that uses it.

    ```python
    async with AsyncAurous() as client:
        image = await client.images.create(prompt="a lighthouse at dusk", size="2k_16_9")
    ```

    Args:
        api_key: the team's API key; defaults to the ``AUROUS_API_KEY`` environment variable.
        base_url: the API root; defaults to ``AUROUS_BASE_URL``, then the production host.
        api_version: the ``Aurous-Version`` sent on every request (pinned per release).
        timeout: seconds one call may take in total, every attempt and retry wait
            included (default: ``retry.timeout``, 120 s); each method can override it.
            Waiting for a rate-limit permit does not count: pacing is the SDK's job.
        max_queue_wait: the most seconds a call waits for a rate-limit permit before
            it raises ``RateLimitQueueTimeoutError`` (at once when the wait is already
            known to be longer); ``None`` (the default) waits as long as pacing needs.
            ``limit_queue_wait`` overrides it for a block of calls.
        retry: which failures are retried, how often and how long to wait.
        limits: the connection pool's bounds.
        timeouts: per-attempt connect and read timeouts.
        clock: time source for retry waits, rate pacing and polling (tests inject a
            fast one).
        polling: how waits poll: intervals and the share of the GET budget they use.
        max_response_bytes: the largest API answer (JSON) the client reads, 16 MiB by
            default; a larger one raises ``ResponseTooLargeError`` before it is read
            whole. Output downloads are not capped.
        proxy: an ``http://`` or ``https://`` proxy for every request, credentials
            (``http://user:password@host:3128``) included; never shown in a repr or an
            error. It takes precedence over the environment.
        trust_env: without ``proxy``, use the ``HTTPS_PROXY`` / ``HTTP_PROXY`` proxies
            for every host not listed in ``NO_PROXY`` (read on the first request).
        ssl: ``True`` verifies servers against the default trust store; an
            ``ssl.SSLContext`` brings custom CAs or a client certificate; ``False``
            skips verification (a local test server only).
        redis_url: fleet mode: ``redis://[[user]:password@]host[:port][/db]`` (or
            ``rediss://``, ``unix://``); defaults to ``AUROUS_REDIS_URL``. Every client on
            that Redis with the same key and base URL shares one rate budget, and a
            webhook received by any of them ends waits in all (needs the ``redis``
            extra). Redis is reached at ``async with`` (or the first request); if it is
            lost later, each client goes on with its share of each bucket.
        tracing: record OpenTelemetry spans and metrics when ``opentelemetry-api`` is
            installed (the ``otel`` extra) and the application configured an SDK;
            ``False`` turns them off. Nothing is imported without the package.

    Raises:
        AurousError: no API key was given or found in the environment.
        TypeError, ValueError: ``ssl`` or ``proxy`` is not a usable value.
        InvalidParameterError: ``redis_url`` is malformed (its password is not shown).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        api_version: str = API_VERSION,
        timeout: float | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        limits: Limits = DEFAULT_LIMITS,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        clock: Clock | None = None,
        polling: PollPolicy = DEFAULT_POLLING,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        proxy: str | None = None,
        trust_env: bool = True,
        ssl: SSLContext | bool = True,
        max_queue_wait: float | None = None,
        redis_url: str | None = None,
        tracing: bool = True,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        if not key:
            raise AurousError(
                f"no API key: pass api_key= or set the {ENV_API_KEY} environment variable"
            )
        root = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        if timeout is None:
            timeout = retry.timeout
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if type(max_response_bytes) is not int or max_response_bytes < 1:
            raise ValueError(
                f"max_response_bytes must be a positive integer, got {max_response_bytes!r}"
            )
        self._clock: Clock = clock or SystemClock()
        self._transport = Transport(
            max_connections=limits.max_connections,
            max_connections_per_host=limits.max_connections_per_host,
            keepalive_expiry=limits.keepalive_timeout,
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.read,
            max_response_bytes=max_response_bytes,
            user_agent=USER_AGENT,
            proxy=proxy,
            trust_env=trust_env,
            ssl=ssl,
        )
        self._governor = Governor(self._clock)
        self._fleet: Fleet | None = None
        governor = self._governor
        if redis_url is None:
            redis_url = os.environ.get(ENV_REDIS_URL) or None
        if redis_url is not None:
            self._fleet = _fleet(redis_url, root, key, self._governor, self.deliver_event)
            # It offers every method of a governor the requester uses.
            governor = cast(Governor, self._fleet.governor)
        parts = client_parts(tracing)
        self._requester = parts.requester(
            api_key=key,
            base_url=root,
            api_version=api_version,
            timeout=timeout,
            retry=retry,
            transport=self._transport,
            governor=governor,
            clock=self._clock,
            max_queue_wait=max_queue_wait,
        )
        requester = self._requester
        self._poller = PollScheduler(
            parts.source(requester, polling),
            self._clock,
            polling,
            refill_rate=self._get_refill,
        )
        self._waits = parts.waits(self._poller, requester)
        self._receiver: WebhookReceiver | None = None
        self.images = Images(requester, self._waits)
        self.videos = Videos(requester, self._waits)
        self.loras = Loras(requester)
        self.video_loras = VideoLoras(requester)
        self.files = Files(requester)
        self.characters = Characters(requester)
        self.webhook_endpoints = WebhookEndpoints(requester)
        self.balance = Balance(requester)
        self.team = Team(requester)
        self.pricing = Pricing(requester)
        self.usage = Usage(requester)

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<AsyncAurous{state} base_url={self.base_url!r} api_version={self.api_version!r}>"

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._requester.base_url

    @property
    def api_version(self) -> str:
        """The ``Aurous-Version`` sent unless a call overrides it."""
        return self._requester.api_version

    @property
    def timeout(self) -> float:
        """Seconds one call may take in total, unless a call overrides it."""
        return self._requester.timeout

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called; a closed client refuses further requests."""
        return self._transport.closed

    @property
    def rate_limits(self) -> Mapping[str, BucketState]:
        """The governor's live view of each rate-limit bucket seen so far."""
        return self._governor.snapshot()

    def limit_queue_wait(self, max_wait: float | None) -> contextlib.AbstractContextManager[None]:
        """Bound the wait for a rate-limit permit of the calls made in a ``with`` block.

        The bound applies to this client's calls in the block and in tasks started from
        it; ``None`` lifts the client's ``max_queue_wait``. A web handler keeps its
        answer time bounded this way::

            with client.limit_queue_wait(2.0):
                image = await client.images.create(prompt=prompt)

        Raises:
            RateLimitQueueTimeoutError: (from a call in the block) no permit in time.
        """
        return self._requester.queue_wait_bound(max_wait)

    # -- waiting ----------------------------------------------------------------------

    def wait_for(
        self, job: JobRef, *, timeout: float | None = None, on_progress: bool = False
    ) -> AsyncIterator[Generation]:
        """Yield a generation's snapshots until it is terminal.

        First the current state (the snapshot passed in, or a fresh poll for an id), then
        one snapshot per status change, ending after the terminal one. Images and videos
        alike. Every wait of the client shares one poll scheduler (see ``PollPolicy``),
        and attached webhooks resolve waits the moment their event arrives.

        Args:
            job: a ``Generation`` or its id.
            timeout: seconds (on the client's clock) before ``WaitTimeoutError``.
            on_progress: also yield when other fields change (cost, outputs, ...).

        Raises:
            WaitTimeoutError: not terminal in time; ``.last`` holds the last snapshot.
            NotFoundError: no such generation (and other errors polling cannot fix).
        """
        return self._waits.wait_for(job, timeout=timeout, on_progress=on_progress)

    async def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        raise_on_failure: bool = False,
        cancel_on_timeout: bool = False,
    ) -> Generation:
        """Wait until a generation is terminal and return it.

        Args:
            job: a ``Generation`` or its id.
            timeout: seconds (on the client's clock) before ``WaitTimeoutError``.
            raise_on_failure: raise ``GenerationFailedError`` unless it ``succeeded``.
            cancel_on_timeout: cancel the job on the server before raising the timeout.

        Raises:
            WaitTimeoutError: not terminal in time (``.last``: the last snapshot, or the
                cancelled generation with ``cancel_on_timeout``).
            GenerationFailedError: see ``raise_on_failure``.
        """
        return await self._waits.wait(
            job,
            timeout=timeout,
            raise_on_failure=raise_on_failure,
            cancel_on_timeout=cancel_on_timeout,
        )

    def as_completed(
        self,
        jobs: Iterable[JobRef] | AsyncIterable[JobRef],
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[Generation]:
        """Yield generations as they reach a terminal state, in completion order.

        ``jobs`` may be an async iterable (e.g. ``images.create_many(...)``): jobs are
        watched as they arrive. Each distinct id is yielded once. A job whose polling
        fails for good (404, or ``PollPolicy.max_failures`` transient errors in a row)
        raises its error here, with ``generation_id`` set; it is never dropped silently.
        If an async ``jobs`` source fails (say a create is refused), the jobs it had
        already handed over are still awaited and yielded; its error is raised after.

        Raises:
            WaitTimeoutError: ``timeout`` passed first; ``.pending`` lists the ids left.
        """
        return self._waits.as_completed(jobs, timeout=timeout)

    def attach_webhooks(self, receiver: WebhookReceiver) -> None:
        """Resolve waits from a ``WebhookReceiver``'s verified generation events.

        While attached, a waiting job completes the moment its ``image.*``/``video.*``
        event arrives (whichever framework feeds the receiver: ``receiver.handle``), and
        polls only every ``PollPolicy.webhook_interval`` seconds as a safety net. One
        receiver at a time; attaching another replaces it.
        """
        self.detach_webhooks()
        receiver.add_listener(self.deliver_event)
        if self._fleet is not None:
            receiver.add_listener(self._fleet.publish)
        self._receiver = receiver
        self._poller.webhooks = True

    def detach_webhooks(self) -> None:
        """Stop listening to the attached receiver and poll at the normal pace again."""
        if self._receiver is not None:
            self._receiver.remove_listener(self.deliver_event)
            if self._fleet is not None:
                self._receiver.remove_listener(self._fleet.publish)
            self._receiver = None
        self._poller.webhooks = False

    def deliver_event(self, event: Event) -> None:
        """An event arrived: wake this client's waits on the generation it is about.

        The one way in for events, however they came: an attached receiver calls it
        for each new verified event, and events relayed from another process (after
        ``Event.from_dict``) can be handed over here. ``image.*`` and ``video.*``
        events resolve the waits on their generation at once (a terminal one that
        arrives before its wait starts is remembered); other events are ignored. It
        does not verify anything: pass only events that ``verify`` or a receiver
        accepted.
        """
        self._waits.on_event(event)

    def _get_refill(self) -> float:
        refill = self._governor.pacing_rate("get") or DOCUMENTED_BUCKETS["get"].refill_per_second
        # In fleet mode every live process polls: each plans with its share.
        return refill if self._fleet is None else refill / self._fleet.live_processes

    async def close(self) -> None:
        """Stop the poll scheduler and close the connection pool. Idempotent."""
        self.detach_webhooks()
        await self._poller.aclose()
        if self._fleet is not None:
            await self._fleet.aclose()
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncAurous:
        if self.closed:
            raise RuntimeError("this client has been closed; create a new one")
        if self._fleet is not None:
            try:
                await self._fleet.start()
            except BaseException:
                await self.close()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _fleet(
    url: str, base_url: str, api_key: str, governor: Governor, deliver: Callable[[Event], None]
) -> Fleet:
    """Fleet mode's share of a client (imports redis only when fleet mode is asked for)."""
    try:
        from ._fleet._runtime import Fleet
    except ImportError as exc:  # the redis extra is not installed
        raise AurousError(
            f"redis_url needs the redis package: pip install 'aurous-async[redis]' ({exc})"
        ) from None
    return Fleet(url, base_url=base_url, api_key=api_key, local=governor, deliver=deliver)
