"""Webhook endpoints, signed deliveries, retries, auto-disable and generation callbacks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aurous_async._clock import ScaledClock
from aurous_async.testing import Emulator, run_emulator
from aurous_async.testing._webhooks import Delivery, WebhookHub
from aurous_async.webhooks import WebhookVerificationError, verify

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WAIT = 15.0  # generous: the machine is shared; nothing here waits this long when healthy
DAY = 24 * 3600.0
ALL_TYPES = [
    "image.completed",
    "image.failed",
    "image.cancelled",
    "video.completed",
    "video.failed",
    "video.cancelled",
    "usage.balance_low",
    "webhook.endpoint_disabled",
    "character.completed",
    "character.failed",
    "character.cancelled",
]
EVENT_ID = re.compile(r"^evt_[0-9A-HJKMNP-TV-Z]{26}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# -- a loopback receiver ---------------------------------------------------------------
@attrs.frozen
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An ``aiohttp.web`` app on 127.0.0.1 that records POSTs and answers from a script."""

    def __init__(self) -> None:
        self.hits: dict[str, list[Received]] = {}
        self.scripts: dict[str, list[int]] = {}
        self.defaults: dict[str, int] = {}
        self.stalls: dict[str, list[float]] = {}
        self._arrived: dict[str, asyncio.Queue[Received]] = {}
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        received = Received(name, dict(request.headers), await request.read())
        self.hits.setdefault(name, []).append(received)
        self._queue(name).put_nowait(received)
        stalls = self.stalls.get(name)
        if stalls:
            await asyncio.sleep(stalls.pop(0))
        script = self.scripts.get(name)
        status = script.pop(0) if script else self.defaults.get(name, 200)
        return web.Response(status=status, text="ok")

    def _queue(self, name: str) -> asyncio.Queue[Received]:
        return self._arrived.setdefault(name, asyncio.Queue())

    def url(self, name: str) -> str:
        return str(self.server.make_url(f"/{name}"))

    async def next(self, name: str) -> Received:
        """The next request to ``name`` (fails after ``WAIT`` seconds)."""
        return await asyncio.wait_for(self._queue(name).get(), WAIT)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with rec.server:
        yield rec


@pytest.fixture
async def emu(receiver: Receiver) -> AsyncIterator[Emulator]:
    # 1000x: the whole 8-attempt schedule (127 emulator seconds) takes ~0.13 s.
    async with run_emulator(time_scale=1000.0) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as s:
        yield s


# -- helpers ---------------------------------------------------------------------------
async def call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: object = None,
    *,
    key: str | None = None,
) -> tuple[int, Any]:
    headers = {"X-Api-Key": key} if key else None
    async with http.request(method, path, json=body, headers=headers) as response:
        return response.status, await response.json()


async def create(
    http: aiohttp.ClientSession, url: str, events: list[str], **extra: object
) -> dict[str, Any]:
    status, body = await call(
        http, "POST", "/v1/webhook_endpoints", {"url": url, "events": events, **extra}
    )
    assert status == 201, body
    return body  # type: ignore[no-any-return]


async def fire_test(
    http: aiohttp.ClientSession, endpoint_id: str, event_type: str = "image.completed"
) -> tuple[int, Any]:
    """``POST /v1/webhook_endpoints/{id}/test``: have the endpoint sent a synthetic event."""
    path = f"/v1/webhook_endpoints/{endpoint_id}/test"
    return await call(http, "POST", path, {"event_type": event_type})


def hub(emu: Emulator) -> WebhookHub:
    return emu.state.webhooks


async def settle(emu: Emulator) -> None:
    """Wait until every delivery, retry included, has run its course."""
    await asyncio.wait_for(hub(emu).wait_idle(), WAIT)


def attempts(
    emu: Emulator, endpoint_id: str | None = None, url: str | None = None
) -> list[Delivery]:
    return [
        d
        for d in emu.deliveries
        if (endpoint_id is None or d.endpoint_id == endpoint_id) and (url is None or d.url == url)
    ]


def signatures(header: str) -> tuple[int, list[str]]:
    """Split ``t=…,v1=…[,v1=…]`` independently of the emulator's code."""
    pairs = [part.split("=", 1) for part in header.split(",")]
    (t,) = [int(value) for name, value in pairs if name == "t"]
    return t, [value for name, value in pairs if name == "v1"]


def expected_v1(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def error_of(body: Any) -> tuple[str, str, str | None]:
    err = body["error"]
    return err["type"], err["code"], err["param"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def golden(name: str) -> dict[str, Any]:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"golden fixture {name} not written yet")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def same_shape(golden_value: Any, ours: Any, where: str = "$") -> None:
    """Every golden key is present in ours, with the same JSON type where both are set."""
    if isinstance(golden_value, dict):
        assert isinstance(ours, dict), where
        for name, value in golden_value.items():
            assert name in ours, f"{where}.{name} missing"
            same_shape(value, ours[name], f"{where}.{name}")
    elif golden_value is not None and ours is not None:
        kinds = (bool, str, list, (int, float))
        kind = next(k for k in kinds if isinstance(golden_value, k))
        assert isinstance(ours, kind), f"{where}: {ours!r} is not like {golden_value!r}"


HOOK_URL = "https://hooks.example.com/aurous"
VALID: dict[str, object] = {"url": HOOK_URL, "events": ["image.completed"]}


# -- endpoints: create, get, rotate, test, delete -----------------------------------------
async def test_create_shows_the_secret_once_and_get_hides_it(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Create answers 201 with the plaintext secret and its preview; GET shows secret null."""
    metadata = {f"k{i}": "v" * 500 for i in range(50)}
    created = await create(
        http,
        HOOK_URL,
        ["image.failed", "image.completed", "image.failed"],
        description="Production receiver",
        metadata=metadata,
    )
    assert re.fullmatch(r"we_[0-9A-HJKMNP-TV-Z]{26}", created["id"])
    assert created["object"] == "webhook_endpoint"
    assert created["url"] == HOOK_URL
    assert created["events"] == ["image.failed", "image.completed"]
    assert created["description"] == "Production receiver"
    assert created["metadata"] == metadata
    secret = created["secret"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9]{24,}", secret)
    assert created["secret_preview"] == f"whsec_{secret[6:9]}...{secret[-4:]}"
    assert (created["is_active"], created["consecutive_failures"]) == (True, 0)
    assert (created["last_success_at"], created["last_failure_at"]) == (None, None)
    assert ISO.match(created["created_at"])
    assert created["updated_at"] == created["created_at"]
    status, fetched = await call(http, "GET", f"/v1/webhook_endpoints/{created['id']}")
    assert status == 200
    assert fetched == {**created, "secret": None}


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"events": ["image.completed"]}, "missing_field", "url"),
        ({**VALID, "url": "http://hooks.example.com/x"}, "invalid_format", "url"),
        ({**VALID, "url": "https://"}, "invalid_format", "url"),
        ({**VALID, "url": "https://a.example/" + "x" * 2031}, "value_out_of_range", "url"),
        ({**VALID, "url": 42}, "invalid_format", "url"),
        ({"url": HOOK_URL}, "missing_field", "events"),
        ({**VALID, "events": []}, "value_out_of_range", "events"),
        ({**VALID, "events": "image.completed"}, "invalid_format", "events"),
        ({**VALID, "events": [7]}, "invalid_format", "events"),
        ({**VALID, "events": ["image.bogus"]}, "invalid_format", "events"),
        ({**VALID, "events": ["image.expired"]}, "invalid_format", "events"),
        ({**VALID, "events": ["video.moderation_rejected"]}, "invalid_format", "events"),
        (
            {**VALID, "metadata": {f"k{i}": "v" for i in range(51)}},
            "value_out_of_range",
            "metadata",
        ),
        ({**VALID, "metadata": {"k": "v" * 501}}, "value_out_of_range", "metadata"),
        ({**VALID, "metadata": {"k": 1}}, "invalid_format", "metadata"),
        ({**VALID, "metadata": ["k"]}, "invalid_format", "metadata"),
        ({**VALID, "description": 5}, "invalid_format", "description"),
        ({**VALID, "enabled": True}, "invalid_format", "enabled"),
    ],
)
async def test_create_refuses_invalid_bodies(
    http: aiohttp.ClientSession, body: dict[str, object], code: str, param: str
) -> None:
    """Each invalid create body is a 400 naming the documented code and the field."""
    status, answer = await call(http, "POST", "/v1/webhook_endpoints", body)
    assert status == 400
    assert error_of(answer) == ("invalid_request", code, param)


async def test_plain_http_receivers_need_the_setting() -> None:
    """A loopback http:// URL is refused unless allow_http_webhooks is on; https passes."""
    async with (
        run_emulator(allow_http_webhooks=False) as emulator,
        aiohttp.ClientSession(emulator.base_url, headers={"X-Api-Key": emulator.api_key}) as http,
    ):
        body = {**VALID, "url": "http://127.0.0.1:9/hook"}
        status, answer = await call(http, "POST", "/v1/webhook_endpoints", body)
        assert (status, error_of(answer)) == (400, ("invalid_request", "invalid_format", "url"))
        assert (await create(http, HOOK_URL, ["*"]))["is_active"]


async def test_wildcard_expands_to_the_event_types_of_the_version(
    http: aiohttp.ClientSession,
) -> None:
    """["*"] is stored as the eleven 2026-05-15 event types, with no expired/moderation types."""
    created = await create(http, HOOK_URL, ["*"])
    assert created["events"] == ALL_TYPES
    mixed = await create(http, HOOK_URL, ["image.completed", "*"])
    assert mixed["events"] == ALL_TYPES


async def test_routes_use_their_buckets_and_create_is_limited_to_ten(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Create, get, rotate, test and delete are metered in their buckets; an 11th create is 429."""
    ep = (await create(http, HOOK_URL, ["image.completed"]))["id"]
    base = f"/v1/webhook_endpoints/{ep}"
    assert (await call(http, "GET", base))[0] == 200
    assert (await call(http, "POST", base + "/rotate_secret"))[0] == 200
    assert (await call(http, "POST", base + "/test", {"event_type": "image.completed"}))[0] == 200
    assert (await call(http, "DELETE", base))[0] == 200
    buckets = [(r.method, r.bucket) for r in emu.requests if r.path.startswith("/v1/webhook")]
    assert buckets == [
        ("POST", "webhook_endpoints"),
        ("GET", "get"),
        ("POST", "default"),
        ("POST", "webhooks_test"),
        ("DELETE", "default"),
    ]
    for _ in range(9):
        await create(http, HOOK_URL, ["image.completed"])
    status, answer = await call(http, "POST", "/v1/webhook_endpoints", VALID)
    assert (status, error_of(answer)[1]) == (429, "too_many_requests")


async def test_read_keys_cannot_manage_endpoints(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A read-scoped key may GET an endpoint but gets 403 missing_scope on every write."""
    ep = (await create(http, HOOK_URL, ["image.completed"]))["id"]
    read = emu.add_key(emu.team_id, "read")
    base = f"/v1/webhook_endpoints/{ep}"
    assert (await call(http, "GET", base, key=read))[0] == 200
    for method, path, body in [
        ("POST", "/v1/webhook_endpoints", VALID),
        ("POST", base + "/rotate_secret", None),
        ("POST", base + "/test", {"event_type": "image.completed"}),
        ("DELETE", base, None),
    ]:
        status, answer = await call(http, method, path, body, key=read)
        assert (status, error_of(answer)[:2]) == (403, ("authentication", "missing_scope"))


async def test_unknown_and_foreign_endpoints_are_404(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """GET, rotate_secret and test answer 404 for an unknown id and for another team's id."""
    other = emu.add_team("Other")
    foreign = (
        await call(
            http, "POST", "/v1/webhook_endpoints", {**VALID, "events": ["*"]}, key=other.api_key
        )
    )[1]["id"]
    for ep in (foreign, "we_01HXMQ7Z3K8Y2NABCDEFGHJKMN"):
        base = f"/v1/webhook_endpoints/{ep}"
        for method, path, body in [
            ("GET", base, None),
            ("POST", base + "/rotate_secret", None),
            ("POST", base + "/test", {"event_type": "image.completed"}),
        ]:
            status, answer = await call(http, method, path, body)
            assert (status, error_of(answer)[:2]) == (404, ("not_found", "resource_not_found"))
    status, still = await call(http, "GET", f"/v1/webhook_endpoints/{foreign}", key=other.api_key)
    assert (status, still["secret"]) == (200, None)


async def test_delete_is_always_200_and_reports_what_it_did(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """DELETE answers 200 every time; deleted is true only when an own endpoint went away."""
    ep = (await create(http, HOOK_URL, ["image.completed"]))["id"]
    other = emu.add_team("Other")
    foreign = (await call(http, "POST", "/v1/webhook_endpoints", VALID, key=other.api_key))[1]["id"]
    path = f"/v1/webhook_endpoints/{ep}"
    assert await call(http, "DELETE", path) == (
        200,
        {"id": ep, "object": "webhook_endpoint", "deleted": True},
    )
    assert (await call(http, "DELETE", path))[1]["deleted"] is False
    assert (await call(http, "GET", path))[0] == 404
    assert (await call(http, "DELETE", f"/v1/webhook_endpoints/{foreign}"))[1]["deleted"] is False
    assert (await call(http, "DELETE", "/v1/webhook_endpoints/we_nope"))[0] == 200
    kept = await call(http, "GET", f"/v1/webhook_endpoints/{foreign}", key=other.api_key)
    assert kept[0] == 200


async def test_no_list_or_update_route_exists(http: aiohttp.ClientSession) -> None:
    """There is no GET /v1/webhook_endpoints and no PATCH (the real API has neither)."""
    listing = await call(http, "GET", "/v1/webhook_endpoints")
    ep = (await create(http, HOOK_URL, ["image.completed"]))["id"]
    patch = await call(http, "PATCH", f"/v1/webhook_endpoints/{ep}", {"url": HOOK_URL})
    assert listing[0] in (404, 405)
    assert patch[0] in (404, 405)


# -- deliveries -----------------------------------------------------------------------------
async def test_published_events_are_enveloped_and_signed(
    emu: Emulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """A subscribed endpoint gets the A11 envelope with a verifiable signature and headers."""
    created = await create(http, receiver.url("main"), ["image.completed"])
    other = emu.add_team("Other")
    await call(
        http,
        "POST",
        "/v1/webhook_endpoints",
        {"url": receiver.url("foreign"), "events": ["*"]},
        key=other.api_key,
    )
    data = {"id": "img_1", "object": "inference", "status": "succeeded"}
    event_id = hub(emu).publish(emu.team_id, "image.completed", data)
    assert hub(emu).publish(emu.team_id, "image.failed", data) is None
    got = await receiver.next("main")
    await settle(emu)
    assert "foreign" not in receiver.hits
    assert len(receiver.hits["main"]) == 1
    envelope = json.loads(got.body)
    assert envelope == {
        "id": event_id,
        "object": "event",
        "type": "image.completed",
        "created_at": envelope["created_at"],
        "api_version": "2026-05-15",
        "synthetic": False,
        "data": data,
    }
    assert event_id is not None
    assert EVENT_ID.match(event_id)
    assert ISO.match(envelope["created_at"])
    assert got.headers["Aurous-Event-Id"] == event_id
    assert got.headers["Aurous-Event-Type"] == "image.completed"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"].startswith("Aurous-Webhooks/")
    t, v1 = signatures(got.headers["Aurous-Webhook-Signature"])
    assert v1 == [expected_v1(created["secret"], t, got.body)]
    assert abs(t - time.time()) < 60  # real time, not the 1000x clock
    (record,) = attempts(emu, created["id"])
    assert (record.status, record.attempt, record.body) == (200, 1, got.body)
    _status, fetched = await call(http, "GET", f"/v1/webhook_endpoints/{created['id']}")
    assert fetched["last_success_at"] is not None
    assert fetched["consecutive_failures"] == 0


async def test_test_fire_delivers_a_signed_synthetic_event(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """POST /test answers webhook_test_fire and delivers a signed synthetic: true event."""
    created = await create(http, receiver.url("t"), ["video.completed", "usage.balance_low"])
    status, fire = await fire_test(http, created["id"], "video.completed")
    assert status == 200
    assert fire == {
        "object": "webhook_test_fire",
        "endpoint_id": created["id"],
        "event_id": fire["event_id"],
        "enqueued": True,
    }
    assert EVENT_ID.match(fire["event_id"])
    got = await receiver.next("t")
    envelope = json.loads(got.body)
    assert (envelope["id"], envelope["type"], envelope["synthetic"]) == (
        fire["event_id"],
        "video.completed",
        True,
    )
    assert envelope["data"]["id"].startswith("vid_")
    assert envelope["data"]["status"] == "succeeded"
    t, v1 = signatures(got.headers["Aurous-Webhook-Signature"])
    assert v1 == [expected_v1(created["secret"], t, got.body)]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"event_type": "image.failed"}, "invalid_format"),
        ({"event_type": "image.expired"}, "invalid_format"),
        ({}, "missing_field"),
        ({"event_type": "image.completed", "x": 1}, "invalid_format"),
    ],
)
async def test_test_fire_refuses_events_the_endpoint_does_not_take(
    http: aiohttp.ClientSession, body: dict[str, object], code: str
) -> None:
    """event_type must be one the endpoint subscribes to; anything else is a 400."""
    ep = (await create(http, HOOK_URL, ["image.completed"]))["id"]
    status, answer = await call(http, "POST", f"/v1/webhook_endpoints/{ep}/test", body)
    assert status == 400
    assert error_of(answer)[1] == code
    assert error_of(answer)[2] in ("event_type", "x")


@pytest.mark.parametrize("event_type", ALL_TYPES)
async def test_every_event_type_has_a_test_fixture(
    emu: Emulator, http: aiohttp.ClientSession, event_type: str
) -> None:
    """Test fires work for every event type of the version."""
    hub(emu).max_attempts = 1
    ep = (await create(http, f"http://127.0.0.1:{closed_port()}/none", ["*"]))["id"]
    body = {"event_type": event_type}
    status, _ = await call(http, "POST", f"/v1/webhook_endpoints/{ep}/test", body)
    assert status == 200
    await settle(emu)
    (record,) = attempts(emu, ep)
    assert record.json()["type"] == event_type
    assert isinstance(record.json()["data"], dict)


async def test_rotation_signs_with_both_secrets_for_a_day(
    emu: Emulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """After rotate_secret a delivery carries v1 for the new and old secret, for 24 h only."""
    created = await create(http, receiver.url("r"), ["image.completed"])
    base = f"/v1/webhook_endpoints/{created['id']}"
    status, rotated = await call(http, "POST", base + "/rotate_secret")
    assert status == 200
    new, old = rotated["secret"], created["secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert rotated["secret_preview"] == f"whsec_{new[6:9]}...{new[-4:]}"
    assert (await call(http, "GET", base))[1]["secret"] is None
    await call(http, "POST", base + "/test", {"event_type": "image.completed"})
    during = await receiver.next("r")
    t, v1 = signatures(during.headers["Aurous-Webhook-Signature"])
    assert v1 == [expected_v1(new, t, during.body), expected_v1(old, t, during.body)]
    emu.advance(DAY)
    await call(http, "POST", base + "/test", {"event_type": "image.completed"})
    after = await receiver.next("r")
    t, v1 = signatures(after.headers["Aurous-Webhook-Signature"])
    assert v1 == [expected_v1(new, t, after.body)]


# -- retries and auto-disable --------------------------------------------------------------
async def test_failed_deliveries_back_off_exponentially_then_succeed(
    emu: Emulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """Non-2xx answers are retried 1 s, 2 s, 4 s later (emulator clock) until a 2xx."""
    receiver.scripts["flaky"] = [500, 503, 404]
    created = await create(http, receiver.url("flaky"), ["image.completed"])
    event_id = hub(emu).publish(emu.team_id, "image.completed", {"id": "img_1"})
    await settle(emu)
    records = attempts(emu, created["id"])
    assert [(r.attempt, r.status) for r in records] == [(1, 500), (2, 503), (3, 404), (4, 200)]
    assert {r.event_id for r in records} == {event_id}
    gaps = [b.at - a.at for a, b in itertools.pairwise(records)]
    assert all(gap >= want - 0.01 for gap, want in zip(gaps, [1, 2, 4], strict=False)), gaps
    assert len({r.body for r in records}) == 1
    fetched = (await call(http, "GET", f"/v1/webhook_endpoints/{created['id']}"))[1]
    assert fetched["consecutive_failures"] == 0
    assert fetched["last_success_at"] is not None
    assert fetched["last_failure_at"] is not None


async def test_an_event_is_attempted_eight_times_at_most(
    emu: Emulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """A receiver that always fails sees 8 attempts, 1 s doubling to 64 s apart, then no more."""
    receiver.defaults["down"] = 500
    created = await create(http, receiver.url("down"), ["image.completed"])
    hub(emu).publish(emu.team_id, "image.completed", {"id": "img_1"})
    await settle(emu)
    records = attempts(emu, created["id"])
    assert [r.attempt for r in records] == list(range(1, 9))
    gaps = [b.at - a.at for a, b in itertools.pairwise(records)]
    assert all(gap >= 2**i - 0.01 for i, gap in enumerate(gaps)), gaps
    fetched = (await call(http, "GET", f"/v1/webhook_endpoints/{created['id']}"))[1]
    assert (fetched["consecutive_failures"], fetched["is_active"]) == (8, True)
    assert fetched["last_success_at"] is None
    assert ISO.match(fetched["last_failure_at"])


async def test_timeouts_and_refused_connections_are_failures(
    emu: Emulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """A receiver slower than the timeout, or a closed port, counts as a failed attempt."""
    hub(emu).receiver_timeout = 0.2
    receiver.stalls["slow"] = [1.0]
    slow = await create(http, receiver.url("slow"), ["image.completed"])
    dead = await create(http, f"http://127.0.0.1:{closed_port()}/x", ["image.completed"])
    hub(emu).publish(emu.team_id, "image.completed", {"id": "img_1"})
    await settle(emu)
    first, second = attempts(emu, slow["id"])
    assert (first.status, first.error, second.status) == (None, "timeout", 200)
    refused = attempts(emu, dead["id"])
    assert len(refused) == 8
    assert all(r.status is None and r.error for r in refused)


async def test_twenty_consecutive_failures_disable_the_endpoint(
    emu: Emulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """At 20 failures the endpoint turns inactive and the team's other endpoints are told."""
    receiver.defaults["broken"] = 500
    broken = await create(http, receiver.url("broken"), ["image.completed"])
    watcher = await create(http, receiver.url("watcher"), ["webhook.endpoint_disabled"])
    bystander = await create(http, receiver.url("bystander"), ["image.completed"])
    for n in range(3):
        hub(emu).publish(emu.team_id, "image.completed", {"id": f"img_{n}"})
    notice = await receiver.next("watcher")
    await settle(emu)
    envelope = json.loads(notice.body)
    assert envelope["type"] == "webhook.endpoint_disabled"
    assert (envelope["data"]["id"], envelope["data"]["is_active"]) == (broken["id"], False)
    assert envelope["data"]["secret"] is None
    t, v1 = signatures(notice.headers["Aurous-Webhook-Signature"])
    assert v1 == [expected_v1(watcher["secret"], t, notice.body)]
    fetched = (await call(http, "GET", f"/v1/webhook_endpoints/{broken['id']}"))[1]
    assert fetched["is_active"] is False
    assert fetched["consecutive_failures"] >= 20
    failures = len(attempts(emu, broken["id"]))
    assert 20 <= failures < 24  # retries stop once it is disabled
    assert len(receiver.hits["watcher"]) == 1
    assert len(receiver.hits["bystander"]) == 3
    hub(emu).publish(emu.team_id, "image.completed", {"id": "img_late"})
    await settle(emu)
    assert len(attempts(emu, broken["id"])) == failures
    assert len(attempts(emu, bystander["id"])) == 4


async def test_a_recent_success_postpones_auto_disable(
    emu: Emulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """With a success in the last 24 h the endpoint stays active past 20 failures."""
    receiver.scripts["shaky"] = [200]
    receiver.defaults["shaky"] = 500
    created = await create(http, receiver.url("shaky"), ["image.completed"])
    path = f"/v1/webhook_endpoints/{created['id']}"
    for n in range(4):
        hub(emu).publish(emu.team_id, "image.completed", {"id": f"img_{n}"})
        await settle(emu)
    fetched = (await call(http, "GET", path))[1]
    assert (fetched["is_active"], fetched["consecutive_failures"]) == (True, 24)
    emu.advance(DAY)
    hub(emu).publish(emu.team_id, "image.completed", {"id": "img_late"})
    await settle(emu)
    fetched = (await call(http, "GET", path))[1]
    assert (fetched["is_active"], fetched["consecutive_failures"]) == (False, 25)


async def test_deleted_endpoints_get_no_more_retries(receiver: Receiver) -> None:
    """Pending retries for an endpoint are dropped once it is deleted."""
    receiver.defaults["gone"] = 500
    async with (
        run_emulator(time_scale=1.0) as emu,
        aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as http,
    ):
        created = await create(http, receiver.url("gone"), ["image.completed"])
        hub(emu).publish(emu.team_id, "image.completed", {"id": "img_1"})
        await receiver.next("gone")
        assert (await call(http, "DELETE", f"/v1/webhook_endpoints/{created['id']}"))[1]["deleted"]
        emu.advance(3600)
        await settle(emu)
        assert len(receiver.hits["gone"]) == 1


async def test_balance_low_reaches_a_subscribed_endpoint(
    emu: Emulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """Dropping below the threshold sends one usage.balance_low event with the balance."""
    await create(http, receiver.url("money"), ["usage.balance_low"])
    emu.set_credits(emu.team_id, 5.0)  # an adjustment checks the threshold too
    team = emu.state.teams[emu.team_id]
    emu.state.billing.hold(team, Decimal(1), None)  # debounced: within the hour
    got = await receiver.next("money")
    await settle(emu)
    envelope = json.loads(got.body)
    assert envelope["type"] == "usage.balance_low"
    assert envelope["data"]["available_credits"] == 5
    assert envelope["data"]["currency"] == "credit"
    assert len(receiver.hits["money"]) == 1


async def test_publish_without_subscribers_queues_nothing(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Publishing to a team with no matching endpoint enqueues nothing at all."""
    for _ in range(10_000):
        assert hub(emu).publish(emu.team_id, "image.completed", {}) is None
    await create(http, HOOK_URL, ["video.failed"])
    assert hub(emu).publish(emu.team_id, "image.completed", {}) is None
    assert (hub(emu).pending, emu.deliveries) == (0, [])


# -- per-generation callbacks (A12) ---------------------------------------------------------
async def test_generation_callbacks_try_three_times_two_seconds_apart(
    emu: Emulator, receiver: Receiver
) -> None:
    """A webhook_url callback is {event, data}, unsigned, and tried at most 3 times 2 s apart."""
    receiver.defaults["cb"] = 500
    receiver.scripts["cb2"] = [502]
    data = {"id": "img_1", "status": "succeeded"}
    hub(emu).callback(receiver.url("cb"), "image.completed", data)
    hub(emu).callback(receiver.url("cb2"), "video.failed", {"id": "vid_1"})
    await settle(emu)
    failing = attempts(emu, url=receiver.url("cb"))
    assert [(r.attempt, r.status) for r in failing] == [(1, 500), (2, 500), (3, 500)]
    assert all(b.at - a.at >= 2 - 0.01 for a, b in itertools.pairwise(failing))
    assert all(r.endpoint_id is None and r.event_id is None for r in failing)
    assert json.loads(receiver.hits["cb"][0].body) == {"event": "image.completed", "data": data}
    assert "Aurous-Webhook-Signature" not in receiver.hits["cb"][0].headers
    recovering = attempts(emu, url=receiver.url("cb2"))
    assert [r.status for r in recovering] == [502, 200]


async def test_worker_shutdown_is_clean_with_deliveries_in_flight(receiver: Receiver) -> None:
    """Leaving the emulator while a receiver stalls cancels the attempt and closes the session."""
    receiver.stalls["stall"] = [0.5]
    async with run_emulator() as emu:
        emu.state.webhooks.callback(receiver.url("stall"), "image.completed", {})
        await receiver.next("stall")
    assert emu.deliveries == []


# -- golden shapes -------------------------------------------------------------------------
async def test_endpoint_object_matches_the_golden_example(http: aiohttp.ClientSession) -> None:
    """The create response has every field of the contract's example, with the same types."""
    expected = golden("webhook_endpoint.json")
    created = await create(http, HOOK_URL, ["image.completed", "image.failed"])
    same_shape(expected, created)
    fetched = (await call(http, "GET", f"/v1/webhook_endpoints/{created['id']}"))[1]
    same_shape({**expected, "secret": None}, fetched)


async def test_test_fire_matches_the_golden_example(http: aiohttp.ClientSession) -> None:
    """The test-fire response has exactly the fields of the contract's example."""
    expected = golden("webhook_test_fire.json")
    ep = (await create(http, HOOK_URL, ["image.completed"]))["id"]
    body = {"event_type": "image.completed"}
    fire = (await call(http, "POST", f"/v1/webhook_endpoints/{ep}/test", body))[1]
    same_shape(expected, fire)
    assert set(fire) == set(expected)


async def test_deliveries_never_leave_loopback_by_default() -> None:
    """A receiver on a public host is recorded as a failed attempt, never contacted."""
    async with (
        run_emulator(time_scale=1e6) as emu,
        aiohttp.ClientSession(emu.base_url) as http,
    ):
        headers = {"X-Api-Key": emu.api_key}
        body = {"url": "https://receiver.example.com/hook", "events": ["*"]}
        async with http.post("/v1/webhook_endpoints", json=body, headers=headers) as r:
            assert r.status == 201
            endpoint = await r.json()
        path = f"/v1/webhook_endpoints/{endpoint['id']}/test"
        async with http.post(path, json={"event_type": "image.completed"}, headers=headers) as r:
            assert r.status == 200
        await settle(emu)
        tries = [d for d in emu.deliveries if d.url.startswith("https://receiver.")]
        assert tries
        assert all(d.status is None and "loopback" in (d.error or "") for d in tries)


async def test_signatures_use_real_time_so_the_sdk_verifies_a_fast_emulator(
    receiver: Receiver,
) -> None:
    """At 60x with the clock a minute and more ahead, a delivery still verifies in real time."""
    async with (
        run_emulator(time_scale=60.0) as emu,
        aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as http,
    ):
        emu.advance(400)  # what 6 real seconds at 60x plus a little more amount to
        assert emu.clock.time() - time.time() > 300
        created = await create(http, receiver.url("real"), ["image.completed"])
        await fire_test(http, created["id"])
        got = await receiver.next("real")
        event = verify(got.body, got.headers, created["secret"])  # tolerance: real time now
        assert event.type == "image.completed"
        assert ISO.match(json.loads(got.body)["created_at"])
        assert json.loads(got.body)["created_at"] > iso_now(emu.clock.time() - 60)


async def test_the_signing_clock_is_injectable(receiver: Receiver) -> None:
    """A test-controlled signing clock sets ``t=``, so a stale delivery can be staged."""
    signing = ScaledClock(1.0, start=1_000_000_000.0)
    async with (
        run_emulator(signing_clock=signing) as emu,
        aiohttp.ClientSession(emu.base_url, headers={"X-Api-Key": emu.api_key}) as http,
    ):
        created = await create(http, receiver.url("stale"), ["image.completed"])
        await fire_test(http, created["id"])
        got = await receiver.next("stale")
    t, _ = signatures(got.headers["Aurous-Webhook-Signature"])
    assert 1_000_000_000 <= t < 1_000_000_060
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(got.body, got.headers, created["secret"])
    assert verify(got.body, got.headers, created["secret"], now=t).type == "image.completed"


def iso_now(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
