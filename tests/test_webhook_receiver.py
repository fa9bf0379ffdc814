"""``WebhookReceiver``: ``handle(body, headers)`` on its own, on a real loopback ``aiohttp.web``
server, and against the emulator."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import pytest
from _sdk_helpers import emulated
from aiohttp import web
from aiohttp.test_utils import TestClient as _TestClient
from aiohttp.test_utils import TestServer

from aurous_async import EventType, Generation, GenerationStatus, PollPolicy, ScaledClock
from aurous_async.testing import run_emulator
from aurous_async.webhooks import SIGNATURE_HEADER, Event, WebhookReceiver, sign, verify

pytestmark = pytest.mark.anyio

SECRET = "whsec_receiverTestSecret0123456789"
T = 1_714_752_900.0
WAIT = 10.0

TestClient = _TestClient[web.Request, web.Application]


def delivery(
    event_id: str = "evt_1", event_type: str = "image.completed", secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    """A signed delivery body and its headers."""
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created_at": "2026-05-04T10:00:14Z",
            "api_version": "2026-05-15",
            "synthetic": False,
            "data": {"id": "img_1", "status": "succeeded", "created_at": "2026-05-04T10:00:00Z"},
        }
    ).encode()
    headers = {
        SIGNATURE_HEADER: sign(body, secret, timestamp=int(T)),
        "Content-Type": "application/json",
        "Aurous-Event-Id": event_id,
        "Aurous-Event-Type": event_type,
    }
    return body, headers


def make_receiver(**kwargs: Any) -> WebhookReceiver:
    """A receiver whose clock stands still at the deliveries' timestamp."""
    return WebhookReceiver(SECRET, clock=ScaledClock(1e-9, start=T), **kwargs)


@pytest.fixture
async def receiver_client() -> AsyncIterator[Callable[[WebhookReceiver], Awaitable[TestClient]]]:
    """Serve receivers on loopback and hand back test clients for them."""
    clients: list[TestClient] = []

    async def start(receiver: WebhookReceiver) -> TestClient:
        client = TestClient(TestServer(receiver.app()))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


Start = Callable[[WebhookReceiver], Awaitable[TestClient]]


async def post(client: TestClient, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """POST one delivery to the receiver; its status and JSON answer."""
    async with client.post("/webhooks", data=body, headers=headers) as response:
        return response.status, await response.json()


async def test_bad_signature_answers_400_and_dispatches_nothing(receiver_client: Start) -> None:
    """A delivery signed with another secret gets 400 with a short JSON error."""
    receiver = make_receiver()
    seen: list[Event] = []
    receiver.on("*", seen.append)
    client = await receiver_client(receiver)
    status, answer = await post(client, *delivery(secret="whsec_wrong"))
    assert status == 400
    assert answer["error"]["code"] == "no_matching_signature"
    assert SECRET not in json.dumps(answer)
    status, answer = await post(client, delivery()[0], {})
    assert (status, answer["error"]["code"]) == (400, "missing_header")
    assert seen == []


async def test_stale_delivery_is_rejected_by_the_injected_clock(receiver_client: Start) -> None:
    """The tolerance is measured against the receiver's clock."""
    receiver = WebhookReceiver(SECRET, clock=ScaledClock(1e-9, start=T + 301))
    client = await receiver_client(receiver)
    status, answer = await post(client, *delivery())
    assert (status, answer["error"]["code"]) == (400, "timestamp_outside_tolerance")


async def test_async_and_sync_callbacks_get_typed_events(receiver_client: Start) -> None:
    """Sync and async callbacks both receive the verified, typed event; 200 is answered."""
    receiver = make_receiver()
    got_sync: list[Event] = []
    got_async: list[Event] = []

    async def on_async(event: Event) -> None:
        got_async.append(event)

    receiver.on(EventType.IMAGE_COMPLETED, got_sync.append)
    receiver.on("image.completed", on_async)
    client = await receiver_client(receiver)
    status, answer = await post(client, *delivery())
    assert (status, answer) == (200, {"received": True})
    assert [e.id for e in got_sync] == [e.id for e in got_async] == ["evt_1"]
    generation = got_async[0].generation
    assert generation is not None
    assert generation.status == GenerationStatus.SUCCEEDED


async def test_callbacks_are_routed_by_type(receiver_client: Start) -> None:
    """Type callbacks get only their type; ``*`` gets every type, unknown ones included."""
    receiver = make_receiver()
    calls: list[tuple[str, str]] = []
    receiver.on("image.completed", lambda e: calls.append(("image", e.id)))
    receiver.on("*", lambda e: calls.append(("any", e.id)))
    client = await receiver_client(receiver)
    await post(client, *delivery("evt_a", "image.completed"))
    await post(client, *delivery("evt_b", "video.failed"))
    await post(client, *delivery("evt_c", "brand.new_type"))
    assert calls == [("image", "evt_a"), ("any", "evt_a"), ("any", "evt_b"), ("any", "evt_c")]


async def test_duplicates_are_answered_but_not_dispatched(receiver_client: Start) -> None:
    """A redelivery of a handled event id answers 200 and dispatches nothing."""
    receiver = make_receiver()
    seen: list[str] = []
    receiver.on("*", lambda e: seen.append(e.id))
    client = await receiver_client(receiver)
    body, headers = delivery()
    assert (await post(client, body, headers))[0] == 200
    assert (await post(client, body, headers))[0] == 200
    assert (await post(client, *delivery("evt_2")))[0] == 200
    assert seen == ["evt_1", "evt_2"]


async def test_dedupe_memory_is_bounded(receiver_client: Start) -> None:
    """Beyond ``dedupe_capacity`` ids, the least recently seen one is forgotten."""
    receiver = make_receiver(dedupe_capacity=2)
    seen: list[str] = []
    receiver.on("*", lambda e: seen.append(e.id))
    client = await receiver_client(receiver)
    for event_id in ("evt_1", "evt_2", "evt_1", "evt_3", "evt_1", "evt_2"):
        await post(client, *delivery(event_id))
    assert seen == ["evt_1", "evt_2", "evt_3", "evt_2"]


async def test_zero_capacity_remembers_nothing(receiver_client: Start) -> None:
    """With ``dedupe_capacity=0`` every delivery is dispatched, repeats included."""
    receiver = make_receiver(dedupe_capacity=0)
    seen: list[str] = []
    receiver.on("*", lambda e: seen.append(e.id))
    client = await receiver_client(receiver)
    body, headers = delivery()
    for _ in range(2):
        assert (await post(client, body, headers))[0] == 200
    assert seen == ["evt_1", "evt_1"]


async def test_callback_failure_answers_500_and_redelivery_dispatches_again(
    receiver_client: Start,
) -> None:
    """A raising callback gets 500, and the retried delivery is dispatched once more."""
    receiver = make_receiver()
    attempts: list[str] = []

    async def flaky(event: Event) -> None:
        attempts.append(event.id)
        if len(attempts) == 1:
            raise RuntimeError("database down")

    receiver.on("image.completed", flaky)
    client = await receiver_client(receiver)
    body, headers = delivery()
    status, answer = await post(client, body, headers)
    assert (status, answer["error"]["code"]) == (500, "handler_failed")
    assert "database" not in json.dumps(answer)
    assert (await post(client, body, headers))[0] == 200
    assert (await post(client, body, headers))[0] == 200
    assert attempts == ["evt_1", "evt_1"]


async def test_listeners_get_new_events_and_never_fail_a_delivery(receiver_client: Start) -> None:
    """Listeners see each verified new event once; a raising listener is only logged."""
    receiver = make_receiver()
    heard: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    async def listener(event: Event) -> None:
        heard.append(event.id)

    receiver.add_listener(broken)
    receiver.add_listener(listener)
    client = await receiver_client(receiver)
    body, headers = delivery()
    assert (await post(client, body, headers))[0] == 200
    assert (await post(client, body, headers))[0] == 200
    assert (await post(client, *delivery(secret="whsec_forged")))[0] == 400
    receiver.remove_listener(listener)
    receiver.remove_listener(listener)
    assert (await post(client, *delivery("evt_2")))[0] == 200
    assert heard == ["evt_1"]


class _Flag(logging.Handler):
    """Sets an anyio event when a log record contains ``needle``."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.DEBUG)
        self.needle = needle
        self.seen = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


async def test_concurrent_duplicate_waits_for_the_first_attempt(receiver_client: Start) -> None:
    """A duplicate arriving while the first attempt runs shares its outcome, not a dispatch."""
    receiver = make_receiver()
    release = anyio.Event()
    started = anyio.Event()
    calls: list[str] = []

    async def slow(event: Event) -> None:
        calls.append(event.id)
        started.set()
        await release.wait()

    receiver.on("*", slow)
    client = await receiver_client(receiver)
    flag = _Flag("in flight")
    log = logging.getLogger("aurous_async.webhooks")
    log.addHandler(flag)
    previous = log.level
    log.setLevel(logging.DEBUG)
    statuses: list[int] = []

    async def send() -> None:
        statuses.append((await post(client, *delivery()))[0])

    try:
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                await started.wait()
                tg.start_soon(send)
                await flag.seen.wait()
                release.set()
    finally:
        log.removeHandler(flag)
        log.setLevel(previous)
    assert statuses == [200, 200]
    assert calls == ["evt_1"]


def test_constructor_rejects_bad_settings() -> None:
    """No secret, a negative tolerance or capacity, and an empty type are refused."""
    with pytest.raises(ValueError, match="secret"):
        WebhookReceiver([])
    with pytest.raises(ValueError, match="tolerance"):
        WebhookReceiver(SECRET, tolerance=-1)
    with pytest.raises(ValueError, match="dedupe_capacity"):
        WebhookReceiver(SECRET, dedupe_capacity=-1)
    with pytest.raises(ValueError, match="event_type"):
        WebhookReceiver(SECRET).on("", print)
    assert SECRET not in repr(WebhookReceiver(SECRET))


async def test_app_serves_only_post_on_its_path(receiver_client: Start) -> None:
    """``app(path)`` routes POST at that path; other methods and paths are refused."""
    receiver = make_receiver()
    client = await receiver_client(receiver)
    async with client.get("/webhooks") as response:
        assert response.status == 405
    async with client.post("/elsewhere", data=b"{}") as response:
        assert response.status == 404


# --- end to end with the emulator --------------------------------------------------------


async def _register(
    session: aiohttp.ClientSession, base_url: str, api_key: str, url: str
) -> dict[str, Any]:
    async with session.post(
        f"{base_url}/v1/webhook_endpoints",
        json={"url": url, "events": ["*"]},
        headers={"X-Api-Key": api_key},
    ) as response:
        if response.status == 404:
            pytest.skip("the emulator has no POST /v1/webhook_endpoints route yet")
        assert response.status == 201, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def _fire(
    session: aiohttp.ClientSession, base_url: str, api_key: str, endpoint_id: str, kind: str
) -> str:
    async with session.post(
        f"{base_url}/v1/webhook_endpoints/{endpoint_id}/test",
        json={"event_type": kind},
        headers={"X-Api-Key": api_key},
    ) as response:
        if response.status == 404:
            pytest.skip("the emulator has no POST /v1/webhook_endpoints/{id}/test route yet")
        assert response.status == 200, await response.text()
        event_id: str = (await response.json())["event_id"]
        return event_id


async def test_emulator_test_fire_reaches_the_receiver() -> None:
    """A test fire from the emulator is verified and dispatched as a synthetic typed event."""
    holder: list[WebhookReceiver] = []

    async def route(request: web.Request) -> web.Response:
        return await holder[0].handle(request)

    app = web.Application()
    app.router.add_post("/webhooks", route)
    async with (
        run_emulator() as emu,
        TestServer(app) as server,
        aiohttp.ClientSession() as session,
    ):
        endpoint = await _register(
            session, emu.base_url, emu.api_key, str(server.make_url("/webhooks"))
        )
        receiver = WebhookReceiver(endpoint["secret"], clock=emu.clock)
        holder.append(receiver)
        arrived: list[Event] = []
        done = anyio.Event()

        def on_event(event: Event) -> None:
            arrived.append(event)
            done.set()

        receiver.on("video.completed", on_event)
        event_id = await _fire(
            session, emu.base_url, emu.api_key, endpoint["id"], "video.completed"
        )
        with anyio.fail_after(WAIT):
            await done.wait()
            await emu.state.webhooks.wait_idle()
        assert [e.id for e in arrived] == [event_id]
        event = arrived[0]
        assert event.synthetic is True
        assert event.type is EventType.VIDEO_COMPLETED
        generation = event.generation
        assert generation is not None
        assert generation.id.startswith("vid_")
        assert generation.status == GenerationStatus.SUCCEEDED
        assert [d.status for d in emu.deliveries if d.event_id == event_id] == [200]


async def test_emulator_delivery_after_rotation_verifies_with_the_old_secret() -> None:
    """After rotate_secret a delivery carries two v1 values; either secret verifies it."""
    holder: list[WebhookReceiver] = []

    async def route(request: web.Request) -> web.Response:
        return await holder[0].handle(request)

    app = web.Application()
    app.router.add_post("/webhooks", route)
    async with (
        run_emulator() as emu,
        TestServer(app) as server,
        aiohttp.ClientSession() as session,
    ):
        endpoint = await _register(
            session, emu.base_url, emu.api_key, str(server.make_url("/webhooks"))
        )
        async with session.post(
            f"{emu.base_url}/v1/webhook_endpoints/{endpoint['id']}/rotate_secret",
            headers={"X-Api-Key": emu.api_key},
        ) as response:
            assert response.status == 200, await response.text()
        done = anyio.Event()
        holder.append(WebhookReceiver(endpoint["secret"], clock=emu.clock))
        holder[0].on("character.failed", lambda event: done.set())
        event_id = await _fire(
            session, emu.base_url, emu.api_key, endpoint["id"], "character.failed"
        )
        with anyio.fail_after(WAIT):
            await done.wait()
            await emu.state.webhooks.wait_idle()
        [record] = [d for d in emu.deliveries if d.event_id == event_id]
        assert record.status == 200
        assert record.headers[SIGNATURE_HEADER].count("v1=") == 2


# --- framework-neutral: handle(raw_body, headers), no aiohttp.web ------------------------


async def test_handle_answers_raw_deliveries_without_a_web_framework() -> None:
    """handle(body, headers) verifies, dispatches and says what to answer, as the app does."""
    receiver = make_receiver()
    seen: list[str] = []
    receiver.on("*", lambda e: seen.append(e.id))
    body, headers = delivery()
    # ASGI servers hand over lower-case header names.
    lowered = {name.lower(): value for name, value in headers.items()}
    answer = await receiver.handle(body, lowered)
    assert (answer.status, json.loads(answer.body)) == (200, {"received": True})
    assert answer.headers == {"Content-Type": "application/json"}
    assert answer.event is not None
    assert answer.event.id == "evt_1"
    duplicate = await receiver.handle(body, lowered)
    assert (duplicate.status, json.loads(duplicate.body)) == (200, {"received": True})
    assert seen == ["evt_1"]


async def test_handle_rejects_forged_deliveries_with_400() -> None:
    """A wrong signature gets 400 with the reason, no event and no dispatch."""
    receiver = make_receiver()
    seen: list[Event] = []
    receiver.on("*", seen.append)
    answer = await receiver.handle(*delivery(secret="whsec_forged"))
    assert answer.status == 400
    assert json.loads(answer.body)["error"]["code"] == "no_matching_signature"
    assert answer.event is None
    assert SECRET.encode() not in answer.body
    answer = await receiver.handle(delivery()[0], {})
    assert (answer.status, json.loads(answer.body)["error"]["code"]) == (400, "missing_header")
    assert seen == []


async def test_handle_answers_500_when_a_callback_fails() -> None:
    """A raising callback gets 500 (Aurous retries); the retry is dispatched again."""
    receiver = make_receiver()
    calls: list[str] = []

    def flaky(event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("database down")

    receiver.on("image.completed", flaky)
    body, headers = delivery()
    first = await receiver.handle(body, headers)
    assert (first.status, json.loads(first.body)["error"]["code"]) == (500, "handler_failed")
    assert b"database" not in first.body
    assert (await receiver.handle(body, headers)).status == 200
    assert calls == ["evt_1", "evt_1"]


async def test_handle_takes_bytes_with_headers_only() -> None:
    """A raw body needs its headers, and headers need a raw body."""
    receiver = make_receiver()
    body, headers = delivery()
    with pytest.raises(TypeError, match="headers"):
        await receiver.handle(body)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="bytes"):
        await receiver.handle(body.decode(), headers)  # type: ignore[call-overload]


async def test_a_raw_delivery_from_the_emulator_resolves_a_wait() -> None:
    """An emulator delivery passed to handle() ends wait_for at once: no poll finds it."""
    # The endpoint's URL refuses connections: the emulator's attempt fails, and its
    # record (body and signed headers) is handed over by hand, as a framework would.
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{dead.getsockname()[1]}/hooks"
        slow_polls = PollPolicy(webhook_interval=1e9, min_interval=1e9, max_interval=1e9)
        async with emulated(time_scale=1.0, client_options={"polling": slow_polls}) as (
            emu,
            client,
        ):
            emu.state.webhooks.max_attempts = 1
            endpoint = await client.webhook_endpoints.create(url=url, events=["image.completed"])
            assert endpoint.secret is not None
            receiver = WebhookReceiver(endpoint.secret, clock=emu.clock)
            client.attach_webhooks(receiver)
            job = await client.images.create(prompt="a lighthouse")
            snapshots: list[Generation] = []
            polls_before = len(emu.requests)

            async def wait() -> None:
                async for snapshot in client.wait_for(job):
                    snapshots.append(snapshot)

            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(wait)
                    emu.advance(120)  # the job runs its course; well inside the tolerance
                    await emu.state.webhooks.wait_idle()
                    [record] = [d for d in emu.deliveries if d.event_type == "image.completed"]
                    assert record.status is None  # nobody listened
                    answer = await receiver.handle(record.body, record.headers)
                    assert answer.status == 200
            assert [s.status for s in snapshots] == [
                GenerationStatus.QUEUED,
                GenerationStatus.SUCCEEDED,
            ]
            assert snapshots[-1].id == job.id
            assert len(emu.requests) == polls_before
            client.detach_webhooks()


async def test_deliver_event_is_the_way_in_for_relayed_events() -> None:
    """An event that crossed a process as JSON, handed to deliver_event, ends a wait."""
    slow_polls = PollPolicy(webhook_interval=1e9, min_interval=1e9, max_interval=1e9)
    async with emulated(client_options={"polling": slow_polls}) as (emu, client):
        job = await client.images.create(prompt="a lighthouse")
        finished = {**job.to_dict(), "status": "succeeded", "output_urls": ["https://o/0"]}
        body = json.dumps(
            {
                "id": "evt_relayed",
                "type": "image.completed",
                "created_at": "2026-05-04T10:00:14Z",
                "data": finished,
            }
        ).encode()
        event = verify(body, {SIGNATURE_HEADER: sign(body, SECRET, timestamp=1)}, SECRET, now=1)
        relayed = Event.from_dict(json.loads(event.to_json()))
        assert relayed == event
        requests_before = len(emu.requests)
        with anyio.fail_after(WAIT):
            waiting = client.wait(job)
            client.deliver_event(relayed)
            final = await waiting
        assert final.status is GenerationStatus.SUCCEEDED
        assert final.output_urls == ("https://o/0",)
        assert len(emu.requests) == requests_before
