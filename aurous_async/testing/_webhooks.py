"""Webhook endpoints and their signed deliveries (contract A11, A12, A21, §12).

``publish`` and ``callback`` are synchronous and only enqueue: route handlers and timed
job transitions call them, and must never wait on a receiver. ``run`` is the worker
that ``serve`` starts: it owns the one outgoing ``aiohttp.ClientSession`` and sends
every attempt as its own task, so one slow receiver never holds up another. Retries are
timed on the emulator clock through ``state.scheduler``, so ``time_scale`` and
``Emulator.advance`` speed them up like every other timer.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs
import yarl

from ._faults import WebhookFault
from ._ids import new_id
from ._schema import BOOLEAN, INTEGER, STRING, STRING_MAP, TIMESTAMP, array, const, nullable, obj
from ._serialize import dumps, iso
from ._settings import API_VERSION
from ._webhook_signing import new_secret, secret_preview, signature_header

if TYPE_CHECKING:
    from ._state import EmulatorState

logger = logging.getLogger("aurous_async.testing")

#: The eight event types of v1.0 (§12.2).
V1_EVENT_TYPES = (
    "image.completed",
    "image.failed",
    "image.cancelled",
    "video.completed",
    "video.failed",
    "video.cancelled",
    "usage.balance_low",
    "webhook.endpoint_disabled",
)
#: Added under the same date by the changelog (2026-06-19, an additive change).
CHARACTER_EVENT_TYPES = ("character.completed", "character.failed", "character.cancelled")
#: What ``["*"]`` expands to, per applied version (A21). ``*.expired`` and
#: ``*.moderation_rejected`` do not exist in 2026-05-15 (A18).
EVENT_TYPES_BY_VERSION: Mapping[str, tuple[str, ...]] = {
    API_VERSION: V1_EVENT_TYPES + CHARACTER_EVENT_TYPES,
}
USER_AGENT = "Aurous-Webhooks/1.0 (aurous_async emulator; +https://docs.aurous-labs.com/webhooks)"


def event_types(version: str) -> tuple[str, ...]:
    """The event types that exist in ``version``."""
    return EVENT_TYPES_BY_VERSION.get(version, EVENT_TYPES_BY_VERSION[API_VERSION])


@attrs.define(eq=False)
class Endpoint:
    """One registered webhook endpoint (§12.1)."""

    id: str
    team_id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    metadata: dict[str, str]
    secret: str = attrs.field(repr=False)
    created_at: float
    updated_at: float
    is_active: bool = True
    consecutive_failures: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None
    #: Rotated-out secrets and the instant each stops signing.
    retired: list[tuple[str, float]] = attrs.field(factory=list, repr=False)

    def signing_secrets(self, now: float) -> list[str]:
        """The current secret, then every retired one still inside its grace period."""
        return [self.secret] + [old for old, until in self.retired if now < until]

    SCHEMA = obj(
        {
            "id": STRING,
            "object": const("webhook_endpoint"),
            "url": STRING,
            "events": array(STRING),
            "description": nullable(STRING),
            "secret_preview": STRING,
            "secret": nullable(STRING),
            "is_active": BOOLEAN,
            "consecutive_failures": INTEGER,
            "last_success_at": nullable(TIMESTAMP),
            "last_failure_at": nullable(TIMESTAMP),
            "metadata": STRING_MAP,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        }
    )

    def to_json(self, secret: str | None = None) -> dict[str, object]:
        """The endpoint object; ``secret`` is shown only by create and rotate_secret."""
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "secret_preview": secret_preview(self.secret),
            "secret": secret,
            "is_active": self.is_active,
            "consecutive_failures": self.consecutive_failures,
            "last_success_at": iso(self.last_success_at),
            "last_failure_at": iso(self.last_failure_at),
            "metadata": dict(self.metadata),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@attrs.frozen
class Delivery:
    """One delivery attempt, as the emulator made it (for tests).

    ``endpoint_id`` and ``event_id`` are ``None`` for per-generation callbacks (A12).
    ``status`` is the receiver's HTTP status, or ``None`` with ``error`` set when no
    response came back (timeout, refused connection, ...). ``at`` is the emulator clock
    when the attempt started.
    """

    endpoint_id: str | None
    url: str
    event_id: str | None
    event_type: str
    headers: Mapping[str, str]
    body: bytes
    attempt: int
    at: float
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the receiver answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        """The delivered body, parsed as JSON.

        Raises:
            ValueError: the body is not JSON (a tampered delivery may not be).
        """
        return json.loads(self.body)


@attrs.frozen
class _Job:
    endpoint_id: str | None  # None: a per-generation callback
    url: str
    event_id: str | None
    event_type: str
    body: bytes
    synthetic: bool = False
    attempt: int = 1


class WebhookHub:
    """The endpoint store, the delivery queue and the worker that drains it.

    The attributes below are the delivery policy; tests may lower them (for instance
    ``receiver_timeout``) on ``emulator.state.webhooks`` before publishing.
    """

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        #: Real seconds a receiver has to answer (§12.3).
        self.receiver_timeout = 10.0
        #: Endpoint deliveries: attempts per event, and the first retry delay, doubled
        #: after each failure (emulator clock seconds; A11).
        self.max_attempts = 8
        self.first_retry_delay = 1.0
        #: Per-generation callbacks: attempts, and the fixed gap between them (A12).
        self.callback_attempts = 3
        self.callback_interval = 2.0
        #: Auto-disable: this many consecutive failures and no success within the window.
        self.disable_after_failures = 20
        self.disable_window = 24 * 3600.0
        #: How long a rotated-out secret keeps signing (A11).
        self.rotation_grace = 24 * 3600.0
        #: Attempts in flight at once (the rest wait their turn).
        self.max_concurrency = 64
        self.endpoints: dict[str, Endpoint] = {}
        self.deliveries: list[Delivery] = []
        self._by_team: dict[str, list[Endpoint]] = {}
        self._ready: collections.deque[_Job] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._pending = 0
        #: Test controls: deliveries misbehave (``WebhookFault``), or wait to be released.
        self.fault: WebhookFault | None = None
        self._held = False

    def hold(self) -> None:
        """Keep queued deliveries (and retries that come due) until ``release``."""
        self._held = True

    def release(self, *, reverse: bool = False) -> None:
        """Send what ``hold`` kept: in queue order, or newest first with ``reverse``."""
        self._held = False
        if reverse:
            self._ready.reverse()
        if self._wake is not None:
            self._wake.set()

    # -- the endpoint store (used by _webhook_routes) ----------------------------------
    def create(
        self,
        team_id: str,
        url: str,
        events: tuple[str, ...],
        description: str | None,
        metadata: dict[str, str],
    ) -> tuple[Endpoint, str]:
        """Register an endpoint; returns it and its plaintext secret."""
        now = self._state.now()
        secret = new_secret()
        endpoint = Endpoint(
            id=new_id("we"),
            team_id=team_id,
            url=url,
            events=events,
            description=description,
            metadata=metadata,
            secret=secret,
            created_at=now,
            updated_at=now,
        )
        self.endpoints[endpoint.id] = endpoint
        self._by_team.setdefault(team_id, []).append(endpoint)
        return endpoint, secret

    def get(self, team_id: str, endpoint_id: str) -> Endpoint | None:
        """The team's endpoint, or ``None`` (unknown and foreign ids look the same)."""
        endpoint = self.endpoints.get(endpoint_id)
        return endpoint if endpoint is not None and endpoint.team_id == team_id else None

    def rotate(self, endpoint: Endpoint) -> str:
        """Mint a new secret; the old one keeps signing for ``rotation_grace``."""
        now = self._state.now()
        endpoint.retired = [(s, until) for s, until in endpoint.retired if now < until]
        endpoint.retired.append((endpoint.secret, now + self.rotation_grace))
        endpoint.secret = new_secret()
        endpoint.updated_at = now
        return endpoint.secret

    def delete(self, team_id: str, endpoint_id: str) -> bool:
        """Remove the team's endpoint; ``False`` when there was nothing to remove."""
        endpoint = self.get(team_id, endpoint_id)
        if endpoint is None:
            return False
        del self.endpoints[endpoint_id]
        self._by_team[team_id].remove(endpoint)
        return True

    def fire_test(self, endpoint: Endpoint, event_type: str, data: Mapping[str, object]) -> str:
        """Enqueue a signed ``synthetic: true`` delivery to one endpoint; its event id."""
        event_id, body = self._envelope(endpoint.team_id, event_type, data, synthetic=True)
        self._enqueue(_Job(endpoint.id, endpoint.url, event_id, event_type, body, synthetic=True))
        return event_id

    # -- producers -----------------------------------------------------------------------
    def publish(self, team_id: str, event_type: str, data: Mapping[str, object]) -> str | None:
        """Deliver ``event_type`` to every active endpoint of the team subscribed to it.

        Returns the event id, or ``None`` when no endpoint wants the event (the common
        case, which costs one dictionary lookup).
        """
        endpoints = self._by_team.get(team_id)
        if not endpoints:
            return None
        targets = [e for e in endpoints if e.is_active and event_type in e.events]
        if not targets:
            return None
        event_id, body = self._envelope(team_id, event_type, data, synthetic=False)
        for endpoint in targets:
            self._enqueue(_Job(endpoint.id, endpoint.url, event_id, event_type, body))
        return event_id

    def callback(self, url: str, event: str, data: Mapping[str, object]) -> None:
        """Per-generation ``webhook_url`` callback: ``{event, data}``, unsigned (A12)."""
        self._enqueue(_Job(None, url, None, event, dumps({"event": event, "data": dict(data)})))

    @property
    def pending(self) -> int:
        """Deliveries queued, in flight or waiting for a retry."""
        return self._pending

    async def wait_idle(self) -> None:
        """Return once nothing is queued, in flight or scheduled for a retry."""
        while self._pending:
            if self._idle is None or self._idle.is_set():
                self._idle = asyncio.Event()
            await self._idle.wait()

    # -- the worker --------------------------------------------------------------------
    async def run(self) -> None:
        """Background delivery worker; returns when cancelled (closes its session)."""
        self._wake = wake = asyncio.Event()
        limit = asyncio.Semaphore(self.max_concurrency)
        tasks: set[asyncio.Task[None]] = set()
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_concurrency),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        try:
            while True:
                while self._ready and not self._held:
                    task = asyncio.create_task(self._attempt(session, limit, self._ready.popleft()))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                wake.clear()
                await wake.wait()
        finally:
            self._wake = None
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await session.close()

    def _enqueue(self, job: _Job) -> None:
        copies = 2 if self.fault is not None and self.fault.duplicate and job.endpoint_id else 1
        for _ in range(copies):
            self._pending += 1
            self._requeue(job)

    def _requeue(self, job: _Job) -> None:
        self._ready.append(job)
        if self._wake is not None:
            self._wake.set()

    def _finish(self) -> None:
        self._pending -= 1
        if self._pending == 0 and self._idle is not None:
            self._idle.set()

    def _envelope(
        self, team_id: str, event_type: str, data: Mapping[str, object], *, synthetic: bool
    ) -> tuple[str, bytes]:
        now = self._state.now()
        team = self._state.teams.get(team_id)
        event_id = new_id("evt")
        envelope = {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created_at": iso(now),
            "api_version": team.default_api_version if team is not None else API_VERSION,
            "synthetic": synthetic,
            "data": dict(data),
        }
        return event_id, dumps(envelope)

    async def _attempt(
        self, session: aiohttp.ClientSession, limit: asyncio.Semaphore, job: _Job
    ) -> None:
        try:
            await self._deliver(session, limit, job)
        except Exception:
            logger.exception("emulator: webhook delivery to %s crashed", job.url)
            self._finish()

    async def _deliver(
        self, session: aiohttp.ClientSession, limit: asyncio.Semaphore, job: _Job
    ) -> None:
        endpoint: Endpoint | None = None
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        url = job.url
        async with limit:
            now = self._state.now()
            if job.endpoint_id is not None:
                endpoint = self.endpoints.get(job.endpoint_id)
                # Deleted endpoints get nothing more; disabled ones only explicit test fires.
                if endpoint is None or not (endpoint.is_active or job.synthetic):
                    self._finish()
                    return
                url = endpoint.url
                assert job.event_id is not None
                # Delivery happens in the receiver's world: ``t=`` is real time (the
                # receiver checks it against its own clock), while the payload's times
                # stay on the emulator's clock.
                stamp = self._state.signing_clock.time()
                secrets_, body = endpoint.signing_secrets(now), job.body
                fault = self.fault
                if fault is not None:
                    stamp += fault.skew
                    if fault.wrong_secret:
                        secrets_ = [new_secret()]
                headers["Aurous-Webhook-Signature"] = signature_header(body, secrets_, int(stamp))
                if fault is not None and fault.tamper:
                    body = body[: body.rindex(b"}")] + b',"tampered":true}'
                headers["Aurous-Event-Id"] = job.event_id
                headers["Aurous-Event-Type"] = job.event_type
            else:
                body = job.body
            status, error = await self._post(session, url, body, headers)
        record = Delivery(
            endpoint_id=job.endpoint_id,
            url=url,
            event_id=job.event_id,
            event_type=job.event_type,
            headers=headers,
            body=body,
            attempt=job.attempt,
            at=now,
            status=status,
            error=error,
        )
        self.deliveries.append(record)
        if endpoint is not None:
            self._account(endpoint, record.ok)
        if endpoint is None:
            attempts, delay = self.callback_attempts, self.callback_interval
        else:
            attempts, delay = self.max_attempts, self.first_retry_delay * 2 ** (job.attempt - 1)
        if record.ok or job.attempt >= attempts:
            self._finish()
            return
        retry = attrs.evolve(job, attempt=job.attempt + 1)
        self._state.scheduler.at(self._state.now() + delay, lambda _due: self._requeue(retry))

    async def _post(
        self, session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        if not (self._state.settings.deliver_beyond_loopback or _is_loopback(url)):
            return None, "not sent: the emulator delivers to loopback hosts only"
        try:
            async with session.post(
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.receiver_timeout),
            ) as response:
                await response.read()
                return response.status, None
        except asyncio.TimeoutError:
            return None, "timeout"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _account(self, endpoint: Endpoint, ok: bool) -> None:
        now = self._state.now()
        if ok:
            endpoint.consecutive_failures = 0
            endpoint.last_success_at = now
            return
        endpoint.consecutive_failures += 1
        endpoint.last_failure_at = now
        quiet = endpoint.last_success_at is None or (
            now - endpoint.last_success_at >= self.disable_window
        )
        if (
            endpoint.is_active
            and endpoint.consecutive_failures >= self.disable_after_failures
            and quiet
        ):
            endpoint.is_active = False
            endpoint.updated_at = now
            self.publish(endpoint.team_id, "webhook.endpoint_disabled", endpoint.to_json())


def _is_loopback(url: str) -> bool:
    host = yarl.URL(url).host or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
