"""``EventRelay`` over Redis pub/sub: a webhook received by one process wakes every other.

The process whose receiver verified a delivery publishes the event on the team's
channel; every other process's subscriber task hands it to a callback (the client's
waits). Messages are signed with a key derived from the API key, which Redis never
sees, so whoever can write to Redis still cannot forge an event. Pub/sub delivers at
most once: an event published while a subscriber is disconnected is not replayed, and
the waits' safety-net polling finds the outcome instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable

import anyio
from anyio.abc import TaskStatus
from redis.asyncio.client import PubSub

from .. import _json, _wire
from .._errors import FleetUnavailableError
from .._webhook_verify import Event
from ._membership import process_name
from ._namespace import Namespace
from ._redis_link import DEFAULT_CALL_TIMEOUT, RedisLink

__all__ = ["RedisRelay"]

logger = logging.getLogger("aurous_async.fleet")


def _signing_key(api_key: str) -> bytes:
    return hmac.new(b"aurous-fleet-relay", api_key.encode(), hashlib.sha256).digest()


class RedisRelay:
    """Relays verified webhook events between the processes on one team key.

    Use ``connect`` to build one.

    Args:
        link: the Redis connection (bounded, typed calls).
        namespace: the team's key names (the channel).
        api_key: the team's API key (only a key derived from it is kept, to sign).
        origin: this process's name; its own messages are not handed back to it.
        liveness_interval: seconds between PINGs on the subscriber connection; one
            unanswered for twice this (plus the call bound) counts as Redis lost.
        reconnect_delay: seconds between attempts to subscribe again after a loss.
    """

    def __init__(
        self,
        link: RedisLink,
        namespace: Namespace,
        api_key: str,
        *,
        origin: str | None = None,
        liveness_interval: float = 2.0,
        reconnect_delay: float = 0.25,
    ) -> None:
        self._link = link
        self._channel = namespace.events
        self._key = _signing_key(api_key)
        self.origin = origin or process_name()
        self._liveness = liveness_interval
        self._reconnect_delay = reconnect_delay

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        base_url: str,
        api_key: str,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        liveness_interval: float = 2.0,
    ) -> RedisRelay:
        """Check the URL and reach Redis once.

        Raises:
            InvalidParameterError: ``url`` is malformed (nothing was sent).
            FleetUnavailableError: Redis is unreachable or refused the credentials.
        """
        link = await RedisLink.open(url, call_timeout=call_timeout)
        return cls(
            link,
            Namespace.for_team(base_url, api_key),
            api_key,
            liveness_interval=liveness_interval,
        )

    def __repr__(self) -> str:
        return f"RedisRelay({self._link.url!r})"

    @property
    def link(self) -> RedisLink:
        """The Redis connection."""
        return self._link

    # -- publishing ---------------------------------------------------------------------

    def encode(self, event: Event) -> bytes:
        """The signed channel message of ``event``."""
        body = json.dumps(
            {"origin": self.origin, "event": _wire.converter.unstructure(event)},
            separators=(",", ":"),
        ).encode()
        return self._sign(body) + b"." + body

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest().encode()

    async def publish(self, event: Event) -> None:
        """Send a verified event to every other process's subscriber.

        A receiver listener: ``receiver.add_listener(relay.publish)``.

        Raises:
            FleetUnavailableError: Redis did not answer within the call bound.
        """
        message = self.encode(event)
        await self._link.call(lambda: self._link.client.publish(self._channel, message))

    # -- subscribing --------------------------------------------------------------------

    def decode(self, message: bytes) -> Event | None:
        """The event of a channel message, ``None`` if it is forged, malformed or ours."""
        mac, _, body = message.partition(b".")
        if not hmac.compare_digest(mac, self._sign(body)):
            logger.warning("ignored a relayed webhook event with a bad signature")
            return None
        try:
            payload = _json.loads(body)
            assert isinstance(payload, dict)
            if payload.get("origin") == self.origin:
                return None
            return _wire.structure(payload["event"], Event)
        except (ValueError, KeyError, AssertionError, RecursionError):
            logger.warning("ignored a relayed webhook event that does not decode")
            return None

    async def serve(
        self,
        callback: Callable[[Event], None],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Call ``callback`` with every event another process publishes, until cancelled.

        ``task_status.started()`` is called once the first subscription is confirmed.
        After that, a lost connection is logged once and subscribed again every
        ``reconnect_delay`` seconds until Redis answers.

        Raises:
            FleetUnavailableError: the first subscription failed.
        """
        started = False
        while True:
            try:
                async with self._subscription() as pubsub:
                    if started:
                        self._link.mark_back()
                    else:
                        started = True
                        task_status.started()
                    await self._pump(pubsub, callback)
            except FleetUnavailableError as exc:
                if not started:
                    raise
                self._link.mark_lost(exc)
            await anyio.sleep(self._reconnect_delay)

    @contextlib.asynccontextmanager
    async def _subscription(self) -> AsyncIterator[PubSub]:
        pubsub = self._link.client.pubsub()
        try:
            await self._link.bounded(lambda: pubsub.subscribe(self._channel))
            # The confirmation: once it is read, every later publish reaches us.
            await self._link.bounded(lambda: pubsub.get_message(timeout=self._link.call_timeout))
            yield pubsub
        finally:
            # Closing only drops the connection; it sends nothing that could hang.
            with anyio.CancelScope(shield=True):
                await pubsub.aclose()

    async def _pump(self, pubsub: PubSub, callback: Callable[[Event], None]) -> None:
        poll = self._link.call_timeout / 2
        last_pong = next_ping = anyio.current_time()
        while True:
            now = anyio.current_time()
            if now >= next_ping:
                if now - last_pong > 2 * self._liveness + self._link.call_timeout:
                    raise self._link.unreachable(TimeoutError("no answer to PING"))
                await self._link.bounded(pubsub.ping)
                next_ping = now + self._liveness
            message = await self._link.bounded(
                lambda: pubsub.get_message(ignore_subscribe_messages=True, timeout=poll)
            )
            if message is None:
                continue
            if message["type"] == "pong":
                last_pong = anyio.current_time()
            elif message["type"] == "message":
                event = self.decode(message["data"])
                if event is not None:
                    self._deliver(callback, event)

    @staticmethod
    def _deliver(callback: Callable[[Event], None], event: Event) -> None:
        try:
            callback(event)
        except Exception:
            # One failing callback must not end the subscription of every later event.
            logger.exception("a relayed webhook event's callback failed")

    async def aclose(self) -> None:
        """Close the connections. Idempotent."""
        await self._link.aclose()
