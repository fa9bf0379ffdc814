"""Webhook delivery faults, end to end: the emulator delivers, the SDK's receiver judges.

The user's endpoint is ``aurous_async.webhooks.WebhookReceiver`` on a loopback port. What
the user checks: each event is handled exactly once however often and in whatever order
it arrives; a delivery with a stale or future timestamp, a tampered body or the wrong
secret is refused (400) and never reaches the handler; once the fault is gone, the
emulator's retry brings the event through, so no event is lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web

from aurous_async import AsyncAurous
from aurous_async.testing import Delivery, Emulator, WebhookFault
from aurous_async.webhooks import Event, WebhookReceiver

from ._support import Receiver, scenario

pytestmark = pytest.mark.anyio

EVENTS = ("image.completed", "image.failed")


async def _until(emu: Emulator, count: int) -> list[Delivery]:
    """Wait (in real time, bounded) until ``count`` delivery attempts were made."""
    with anyio.fail_after(10):
        while len(emu.deliveries) < count:  # noqa: ASYNC110 (the emulator has no event for it)
            await anyio.sleep(0.01)
    return list(emu.deliveries)


class Endpoint:
    """A registered endpoint, the user's receiver behind it, and what it handled."""

    def __init__(self, emu: Emulator, receiver: WebhookReceiver, endpoint_id: str) -> None:
        self.emu = emu
        self.receiver = receiver
        self.endpoint_id = endpoint_id
        self.handled: list[Event] = []
        receiver.on("*", self.handled.append)

    @property
    def statuses(self) -> list[int | None]:
        return [d.status for d in self.emu.deliveries if d.endpoint_id == self.endpoint_id]


@pytest.fixture
async def setup(
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[tuple[Emulator, AsyncAurous, Endpoint]]:
    # A real-time emulator clock, so signatures carry honest timestamps; jobs are
    # finished with ``emu.advance``.
    async with scenario(caplog, time_scale=1.0) as (emu, client):
        users: list[Endpoint] = []

        async def handle(request: web.Request) -> web.StreamResponse:
            return await users[0].receiver.handle(request)

        app = web.Application()
        app.router.add_post("/webhooks", handle)
        async with Receiver(app) as server:
            # The emulator takes http:// receivers; the SDK (rightly) insists on https,
            # so the endpoint is registered on the emulator side.
            hub = emu.state.webhooks
            endpoint, secret = hub.create(emu.team_id, server.url(), EVENTS, None, {})
            users.append(Endpoint(emu, WebhookReceiver(secret), endpoint.id))
            yield emu, client, users[0]
            emu.clear_faults()
            with anyio.fail_after(10):
                await hub.wait_idle()


async def _completed(emu: Emulator, client: AsyncAurous, n: int) -> list[str]:
    ids = [(await client.images.create(prompt=f"hooked {i}")).id for i in range(n)]
    emu.advance(300)  # every job reaches its terminal state and publishes its event
    return ids


async def test_event_delivered_twice_is_handled_once(
    setup: tuple[Emulator, AsyncAurous, Endpoint],
) -> None:
    """Every delivery arrives twice (same event id): the handler runs once per event and
    both copies are acknowledged, so nothing is retried."""
    emu, client, user = setup
    emu.inject_webhook_fault(WebhookFault(duplicate=True))
    ids = await _completed(emu, client, 3)
    await _until(emu, 6)
    with anyio.fail_after(10):
        await emu.state.webhooks.wait_idle()
    assert sorted(e.generation.id for e in user.handled if e.generation) == sorted(ids)
    assert len({e.id for e in user.handled}) == len(user.handled) == 3
    assert user.statuses == [200] * 6


async def test_events_delivered_out_of_order_are_each_handled_once(
    setup: tuple[Emulator, AsyncAurous, Endpoint],
) -> None:
    """Deliveries released newest first: all arrive, each once, and ``created_at``
    restores the order in which the events happened."""
    emu, client, user = setup
    emu.hold_webhooks()
    ids: list[str] = []
    for i in range(3):
        ids.append((await client.images.create(prompt=f"ordered {i}")).id)
        emu.advance(300)  # completes this one before the next is created
    assert emu.deliveries == []
    emu.release_webhooks(reverse=True)
    await _until(emu, 3)
    arrived = [e.generation.id for e in user.handled if e.generation]
    assert arrived == list(reversed(ids))
    in_time_order = sorted(user.handled, key=lambda e: e.created_at)
    assert [e.generation.id for e in in_time_order if e.generation] == ids


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (WebhookFault(skew=-900.0), "timestamp_outside_tolerance"),
        (WebhookFault(skew=900.0), "timestamp_outside_tolerance"),
        (WebhookFault(tamper=True), "no_matching_signature"),
        (WebhookFault(wrong_secret=True), "no_matching_signature"),
    ],
    ids=["stale-timestamp", "future-timestamp", "tampered-body", "wrong-secret"],
)
async def test_untrustworthy_delivery_is_refused_then_the_retry_gets_through(
    setup: tuple[Emulator, AsyncAurous, Endpoint],
    caplog: pytest.LogCaptureFixture,
    fault: WebhookFault,
    reason: str,
) -> None:
    """The receiver answers 400 and the handler never sees the bad delivery; after the
    fault is gone, the emulator's retry is verified and handled exactly once."""
    emu, client, user = setup
    emu.inject_webhook_fault(fault)
    (generation_id,) = await _completed(emu, client, 1)
    first = (await _until(emu, 1))[0]
    assert first.status == 400
    assert reason in first.body.decode() or reason in caplog.text
    assert user.handled == []
    emu.clear_faults()
    emu.advance(2)  # the first retry comes due (1 s on the emulator clock)
    await _until(emu, 2)
    assert user.statuses == [400, 200]
    assert [e.generation.id for e in user.handled if e.generation] == [generation_id]
