"""RedisRelay against a real redis-server: webhook wake-ups across processes."""

from __future__ import annotations

import contextlib
import logging
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone

import anyio
import pytest
from _redis import RedisServer
from anyio.streams.text import TextReceiveStream

from aurous_async._errors import FleetUnavailableError
from aurous_async._fleet._namespace import Namespace
from aurous_async._fleet._redis_relay import RedisRelay
from aurous_async._webhook_verify import Event

from ._stores import API_KEY, BASE_URL, WarningWatch

pytestmark = pytest.mark.anyio


def event(number: int) -> Event:
    """A generation event as a receiver hands it over after verifying it."""
    return Event(
        id=f"evt_{number}",
        type="image.completed",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        data={"id": f"img_{number}", "object": "image", "status": "succeeded"},
    )


async def relay(url: str, **options: object) -> RedisRelay:
    """A relay of the test team on ``url``."""
    return await RedisRelay.connect(url, base_url=BASE_URL, api_key=API_KEY, **options)  # type: ignore[arg-type]


class Inbox:
    """Collects relayed events and when each arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []
        self.changed = anyio.Event()

    def __call__(self, received: Event) -> None:
        self.events.append((time.perf_counter(), received))
        self.changed.set()

    async def next(self) -> tuple[float, Event]:
        """The next event, waiting up to two seconds."""
        with anyio.fail_after(2.0):
            while not self.events:
                await self.changed.wait()
                self.changed = anyio.Event()
        return self.events.pop(0)


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[RedisRelay, RedisRelay]]:
    """Two processes' relays on the shared server, (publisher, subscriber); closed after."""
    publisher, subscriber = await relay(redis_url), await relay(redis_url)
    try:
        yield publisher, subscriber
    finally:
        await publisher.aclose()
        await subscriber.aclose()


@contextlib.asynccontextmanager
async def serving(subscriber: RedisRelay, callback: Callable[[Event], None]) -> AsyncIterator[None]:
    """``subscriber`` subscribed and handing events to ``callback`` inside the block."""
    async with anyio.create_task_group() as tg:
        await tg.start(subscriber.serve, callback)
        yield
        tg.cancel_scope.cancel()


async def test_an_event_published_in_one_process_reaches_another_at_once(
    pair: tuple[RedisRelay, RedisRelay],
) -> None:
    """A published event reaches another connection's subscriber well within 50 ms."""
    publisher, subscriber = pair
    inbox = Inbox()
    latencies = []
    async with serving(subscriber, inbox):
        for number in range(20):
            sent = time.perf_counter()
            await publisher.publish(event(number))
            arrived, received = await inbox.next()
            assert received == event(number)
            latencies.append(arrived - sent)
    # Generous for a loaded machine; on an idle one the median is well under 1 ms.
    assert statistics.median(latencies) < 0.05, latencies
    assert max(latencies) < 1.0, latencies


async def test_a_process_does_not_receive_its_own_events(
    pair: tuple[RedisRelay, RedisRelay],
) -> None:
    """The publishing process already handled the event: its own subscriber skips it."""
    other, both = pair
    inbox = Inbox()
    async with serving(both, inbox):
        await both.publish(event(1))
        await other.publish(event(2))
        _, received = await inbox.next()
        assert received.id == "evt_2"


async def test_a_forged_or_garbled_message_is_ignored(
    pair: tuple[RedisRelay, RedisRelay], caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever can write to Redis but lacks the API key cannot wake a wait."""
    publisher, subscriber = pair
    forger = RedisRelay(publisher.link, Namespace.for_team(BASE_URL, API_KEY), "sk_wrong_key")
    inbox = Inbox()
    async with serving(subscriber, inbox):
        await forger.publish(event(1))
        channel = Namespace.for_team(BASE_URL, API_KEY).events
        await publisher.link.client.publish(channel, b"not a signed message")
        signed_garbage = publisher.encode(event(2)).replace(b'"evt_2"', b"[]")
        await publisher.link.client.publish(channel, signed_garbage)
        await publisher.publish(event(3))
        _, received = await inbox.next()
        assert received.id == "evt_3"
    warnings = [r.message for r in caplog.records if r.name == "aurous_async.fleet"]
    assert len(warnings) == 3


async def test_a_failing_callback_does_not_end_the_subscription(
    pair: tuple[RedisRelay, RedisRelay],
) -> None:
    """An exception in the callback is logged; later events still arrive."""
    publisher, subscriber = pair
    inbox = Inbox()

    def callback(received: Event) -> None:
        inbox(received)
        if received.id == "evt_1":
            raise RuntimeError("boom")

    async with serving(subscriber, callback):
        await publisher.publish(event(1))
        await publisher.publish(event(2))
        assert (await inbox.next())[1].id == "evt_1"
        assert (await inbox.next())[1].id == "evt_2"


async def test_serve_raises_when_the_first_subscription_fails(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """With Redis gone before it subscribed, ``serve`` raises instead of waiting silently."""
    server = redis_factory()
    subscriber = await relay(server.url, call_timeout=0.2)
    server.stop()
    try:
        with pytest.raises(FleetUnavailableError):
            await subscriber.serve(Inbox())
    finally:
        await subscriber.aclose()


async def _publish_through_an_outage(
    server: RedisServer,
    lose: Callable[[], None],
    restore: Callable[[], None],
    number: int,
    **subscriber_options: float,
) -> Inbox:
    """Subscribe, ``lose`` Redis until a warning says so, ``restore`` it, then publish
    event ``number`` until the subscriber has it; return the subscriber's inbox."""
    fleet_logger = logging.getLogger("aurous_async.fleet")
    watch = WarningWatch()
    fleet_logger.addHandler(watch)
    publisher = await relay(server.url, call_timeout=0.2)
    subscriber = await relay(server.url, call_timeout=0.2, **subscriber_options)
    inbox = Inbox()
    try:
        async with serving(subscriber, inbox):
            lose()
            with anyio.fail_after(5):
                await watch.seen.wait()
            restore()
            with anyio.fail_after(10):
                while not inbox.events:
                    # Published before the subscriber is back, an event is lost (pub/sub).
                    with contextlib.suppress(FleetUnavailableError):
                        await publisher.publish(event(number))
                    await anyio.sleep(0.05)
    finally:
        fleet_logger.removeHandler(watch)
        await publisher.aclose()
        await subscriber.aclose()
    return inbox


async def test_the_subscriber_comes_back_after_a_redis_restart(
    redis_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down, then back empty: the subscriber subscribes again; one warning, one info."""
    caplog.set_level(logging.INFO, logger="aurous_async.fleet")
    server = redis_factory()
    inbox = await _publish_through_an_outage(server, server.stop, server.start, 7)
    assert inbox.events[0][1].id == "evt_7"
    levels = [r.levelno for r in caplog.records if r.name == "aurous_async.fleet"]
    assert levels.count(logging.WARNING) == 1
    assert levels[-1] == logging.INFO


async def test_a_stopped_redis_is_noticed_by_the_subscriber(
    redis_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """A silent Redis (SIGSTOP) is noticed by the PING liveness check and logged once."""
    caplog.set_level(logging.INFO, logger="aurous_async.fleet")
    server = redis_factory()
    try:
        await _publish_through_an_outage(
            server, server.pause, server.resume, 8, liveness_interval=0.1
        )
    finally:
        server.resume()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1


_SUBSCRIBER = """
import sys, time, anyio
from aurous_async._fleet._redis_relay import RedisRelay

async def main(url, base_url, api_key, count):
    relay = await RedisRelay.connect(url, base_url=base_url, api_key=api_key)
    seen = 0
    done = anyio.Event()

    def arrived(event):
        nonlocal seen
        print(event.id, repr(time.time()), flush=True)
        seen += 1
        if seen == count:
            done.set()

    async with anyio.create_task_group() as tg:
        await tg.start(relay.serve, arrived)
        print("ready", flush=True)
        await done.wait()
        tg.cancel_scope.cancel()
    await relay.aclose()

anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
"""


async def test_an_event_reaches_a_waiter_in_another_os_process(redis_url: str) -> None:
    """A subscriber in a separate Python process gets each published event within 50 ms."""
    count = 10
    command = [sys.executable, "-c", _SUBSCRIBER, redis_url, BASE_URL, API_KEY, str(count)]
    publisher = await relay(redis_url)
    sent: dict[str, float] = {}
    try:
        async with await anyio.open_process(command) as process:
            assert process.stdout is not None
            lines = TextReceiveStream(process.stdout)
            buffer = ""
            with anyio.fail_after(30):
                while "ready\n" not in buffer:
                    buffer += await lines.receive()
                for number in range(count):
                    sent[f"evt_{number}"] = time.time()
                    await publisher.publish(event(number))
                    await anyio.sleep(0.01)
                while buffer.count("\n") < count + 1:
                    buffer += await lines.receive()
                assert await process.wait() == 0
    finally:
        await publisher.aclose()
    arrivals = dict(line.split() for line in buffer.splitlines()[1:])
    latencies = sorted(float(arrivals[name]) - at for name, at in sent.items())
    assert latencies[len(latencies) // 2] < 0.05, latencies
    assert latencies[-1] < 1.0, latencies
