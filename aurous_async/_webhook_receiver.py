"""A webhook receiver for any web framework: verify, deduplicate, dispatch (A11, §12.3).

A thin shell around the pure ``verify``. ``WebhookReceiver.handle(body, headers)`` does
the work and says what to answer; ``app()`` and ``handle(request)`` adapt it to
``aiohttp.web``, which is imported only when they are used. Public through
``aurous_async.webhooks``.
"""

from __future__ import annotations

import collections
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, overload

import anyio
import attrs

from ._clock import Clock, SystemClock
from ._webhook_verify import (
    DEFAULT_TOLERANCE,
    Event,
    WebhookVerificationError,
    _secret_list,
    verify,
)
from .models import EventType

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["EventCallback", "WebhookReceiver", "WebhookResponse"]

logger = logging.getLogger("aurous_async.webhooks")

#: A handler or listener: a plain function or a coroutine function taking the event.
EventCallback = Callable[[Event], Awaitable[None] | None]

_ANY = "*"


class _InFlight:
    """A delivery being dispatched; a concurrent duplicate waits for its outcome."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.ok = False


async def _call(callback: EventCallback, event: Event) -> None:
    result = callback(event)
    if inspect.isawaitable(result):
        await result


_JSON_HEADERS: Mapping[str, str] = MappingProxyType({"Content-Type": "application/json"})


@attrs.frozen
class WebhookResponse:
    """What to answer a webhook delivery with, in any web framework.

    ``200``: handled, or a duplicate of an event already handled. ``400``: rejected
    (bad signature, stale timestamp, not an event); Aurous does not retry it. ``500``: a
    callback failed; Aurous retries the delivery later.

    Attributes:
        status: the HTTP status to answer.
        body: the JSON body to answer, as bytes (it never contains a secret).
        headers: the response headers (``Content-Type: application/json``).
        event: the verified event; ``None`` when the delivery was rejected.
    """

    status: int
    body: bytes
    headers: Mapping[str, str] = _JSON_HEADERS
    event: Event | None = None


def _response(status: int, body: dict[str, object], event: Event | None) -> WebhookResponse:
    return WebhookResponse(status, json.dumps(body).encode(), event=event)


class WebhookReceiver:
    """Receive signed Aurous webhook deliveries, in any web framework.

    Each delivery is verified (400 and a short JSON error if it fails), deduplicated by
    event id (a redelivery of an event already handled answers 200 and dispatches
    nothing), then passed to the listeners and to the callbacks registered with ``on``.
    If a callback raises, the answer is 500 and the event is not remembered, so Aurous
    retries it and the callbacks run again: write them to tolerate a repeat.

    ```python
    receiver = WebhookReceiver(os.environ["AUROUS_WEBHOOK_SECRET"])
    receiver.on("image.completed", save_outputs)  # sync or async

    # any framework: pass the raw body and the headers, answer what comes back
    answer = await receiver.handle(raw_body, request_headers)

    # aiohttp.web: a ready application
    web.run_app(receiver.app("/webhooks"))
    ```

    Args:
        secret_or_secrets: the endpoint's ``whsec_...`` secret; during a rotation pass
            the new and the old one.
        tolerance: seconds a delivery's timestamp may differ from ``clock``, either way.
        clock: the time source for the tolerance check; defaults to the system clock
            (the emulator signs in real time too, whatever its ``time_scale``).
        dedupe_capacity: how many handled event ids to remember (least recently seen
            are forgotten first); 0 remembers none.
    """

    def __init__(
        self,
        secret_or_secrets: str | Sequence[str],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        clock: Clock | None = None,
        dedupe_capacity: int = 10_000,
    ) -> None:
        if dedupe_capacity < 0:
            raise ValueError("dedupe_capacity must not be negative")
        if tolerance != tolerance or tolerance < 0:
            raise ValueError("tolerance must be a non-negative number of seconds")
        self._secrets = _secret_list(secret_or_secrets)
        self._tolerance = tolerance
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._capacity = dedupe_capacity
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._in_flight: dict[str, _InFlight] = {}
        self._callbacks: dict[str, list[EventCallback]] = {}
        self._listeners: list[EventCallback] = []

    def __repr__(self) -> str:
        return f"WebhookReceiver(secrets={len(self._secrets)}, tolerance={self._tolerance:g})"

    def on(self, event_type: EventType | str, callback: EventCallback) -> None:
        """Call ``callback`` for every new event of ``event_type`` (``"*"``: every type).

        Callbacks run one after another, in registration order, type-specific ones
        before ``"*"`` ones; a plain function runs on the event loop, so keep it quick.
        Types this SDK does not know yet may be registered too.
        """
        key = event_type.value if isinstance(event_type, EventType) else str(event_type)
        if not key:
            raise ValueError("event_type must be an event type or '*'")
        self._callbacks.setdefault(key, []).append(callback)

    def add_listener(self, listener: EventCallback) -> None:
        """Pass every verified, non-duplicate event to ``listener``, before the callbacks.

        For infrastructure such as a client resolving the jobs it waits for: a listener
        that raises is logged and does not fail the delivery.
        """
        self._listeners.append(listener)

    def remove_listener(self, listener: EventCallback) -> None:
        """Stop passing events to ``listener``; a listener never added is ignored."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def app(self, path: str = "/webhooks") -> web.Application:
        """A new ``aiohttp.web.Application`` that receives deliveries at ``POST path``."""
        from aiohttp import web

        application = web.Application()
        application.router.add_post(path, self.handle)
        return application

    @overload
    async def handle(self, body: bytes, headers: Mapping[str, str]) -> WebhookResponse: ...

    @overload
    async def handle(self, body: web.BaseRequest) -> web.Response: ...

    async def handle(
        self, body: bytes | web.BaseRequest, headers: Mapping[str, str] | None = None
    ) -> WebhookResponse | web.Response:
        """Answer one delivery: 200 handled (or a duplicate), 400 rejected, 500 retry me.

        ``handle(raw_body, headers)`` works in any framework and returns a
        ``WebhookResponse`` to send back. ``handle(request)`` takes an
        ``aiohttp.web`` request and returns its ``aiohttp.web.Response``, so it can be
        a route handler as it is.

        Args:
            body: the raw request body, byte for byte (not re-serialized JSON); or an
                ``aiohttp.web`` request.
            headers: the request headers (names match case-insensitively); with a
                raw body only.
        """
        if headers is not None:
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise TypeError("handle(body, headers) needs the raw request body as bytes")
            return await self._answer(bytes(body), headers)
        if isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError("handle(body, headers) needs the request headers too")
        return await self._answer_aiohttp(body)

    async def _answer_aiohttp(self, request: web.BaseRequest) -> web.Response:
        from aiohttp import web

        answer = await self._answer(await request.read(), request.headers)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    async def _answer(self, body: bytes, headers: Mapping[str, str]) -> WebhookResponse:
        try:
            event = verify(
                body, headers, self._secrets, tolerance=self._tolerance, now=self._clock.time()
            )
        except WebhookVerificationError as exc:
            logger.warning("rejected a webhook delivery: %s", exc.reason.value)
            error = {"code": exc.reason.value, "message": exc.message}
            return _response(400, {"error": error}, None)
        if await self._receive(event):
            return _response(200, {"received": True}, event)
        error = {"code": "handler_failed", "message": "retry later"}
        return _response(500, {"error": error}, event)

    async def _receive(self, event: Event) -> bool:
        """Dispatch ``event`` unless it was handled already; whether it is handled now."""
        if event.id in self._seen:
            self._seen.move_to_end(event.id)
            logger.debug("duplicate webhook delivery %s ignored", event.id)
            return True
        running = self._in_flight.get(event.id)
        if running is not None:
            # A retry that overtook a slow first attempt: share that attempt's outcome.
            logger.debug("webhook delivery %s is in flight; waiting for it", event.id)
            await running.done.wait()
            return running.ok
        running = self._in_flight[event.id] = _InFlight()
        try:
            running.ok = await self._dispatch(event)
        finally:
            del self._in_flight[event.id]
            running.done.set()
        if running.ok:
            self._remember(event.id)
        return running.ok

    async def _dispatch(self, event: Event) -> bool:
        for listener in list(self._listeners):
            try:
                await _call(listener, event)
            except Exception:
                logger.exception("webhook listener %r failed on %s", listener, event.id)
        key = event.type.value
        callbacks = [*self._callbacks.get(key, ()), *self._callbacks.get(_ANY, ())]
        for callback in callbacks:
            try:
                await _call(callback, event)
            except Exception:
                logger.exception(
                    "webhook callback %r failed on %s (%s); answering 500", callback, event.id, key
                )
                return False
        return True

    def _remember(self, event_id: str) -> None:
        if self._capacity == 0:
            return
        self._seen[event_id] = None
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
