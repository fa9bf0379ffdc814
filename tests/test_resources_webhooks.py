"""``client.webhook_endpoints`` end to end against the emulator and a local receiver."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import anyio
import pytest
from _sdk_helpers import emulated, serve
from aiohttp import web

from aurous_async import (
    BadRequestError,
    DeletedWebhookEndpoint,
    EventType,
    InvalidParameterError,
    NotFoundError,
    WebhookEndpoint,
    WebhookTestFire,
)

pytestmark = pytest.mark.anyio


async def test_register_fire_rotate_and_delete() -> None:
    """An endpoint gets a signed test delivery; rotation and deletion work."""
    received: list[tuple[dict[str, str], bytes]] = []
    arrived = anyio.Event()

    async def hook(request: web.Request) -> web.StreamResponse:
        received.append((dict(request.headers), await request.read()))
        arrived.set()
        return web.Response(text="ok")

    async with serve([("POST", "/hook", hook)]) as receiver, emulated() as (emu, client):
        endpoint = await client.webhook_endpoints.create(
            url=receiver + "/hook",
            events=["image.completed", "image.failed"],
            description="local receiver",
            metadata={"team": "render"},
        )
        assert isinstance(endpoint, WebhookEndpoint)
        assert endpoint.id.startswith("we_")
        assert endpoint.secret is not None
        assert endpoint.secret not in repr(endpoint)
        assert endpoint.events == (EventType.IMAGE_COMPLETED, EventType.IMAGE_FAILED)
        assert endpoint.metadata == {"team": "render"}
        assert emu.requests[-1].bucket == "webhook_endpoints"
        fetched = await client.webhook_endpoints.get(endpoint.id)
        assert fetched.secret is None
        fire = await client.webhook_endpoints.test(endpoint.id, event_type="image.completed")
        assert isinstance(fire, WebhookTestFire)
        assert fire.enqueued is True
        assert fire.endpoint_id == endpoint.id
        assert emu.requests[-1].bucket == "webhooks_test"
        with anyio.fail_after(5):
            await arrived.wait()
        headers, body = received[0]
        assert headers["Aurous-Event-Id"] == fire.event_id
        parts = dict(item.split("=", 1) for item in headers["Aurous-Webhook-Signature"].split(","))
        signed = parts["t"].encode() + b"." + body
        digest = hmac.new(endpoint.secret.encode(), signed, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(digest, parts["v1"])
        rotated = await client.webhook_endpoints.rotate_secret(endpoint.id)
        assert rotated.secret is not None
        assert rotated.secret != endpoint.secret
        gone = await client.webhook_endpoints.delete(endpoint.id)
        assert isinstance(gone, DeletedWebhookEndpoint)
        assert gone.deleted is True
        again = await client.webhook_endpoints.delete(endpoint.id)
        assert again.deleted is False
        with pytest.raises(NotFoundError):
            await client.webhook_endpoints.get(endpoint.id)


async def test_wildcard_expands_and_unsubscribed_test_is_refused() -> None:
    """``["*"]`` subscribes to every current type; a test of another type is a 400."""
    async with emulated() as (_, client):
        everything = await client.webhook_endpoints.create(
            url="https://example.com/all", events=["*"]
        )
        assert EventType.IMAGE_COMPLETED in everything.events
        narrow = await client.webhook_endpoints.create(
            url="https://example.com/narrow", events=["video.failed"]
        )
        with pytest.raises(BadRequestError):
            await client.webhook_endpoints.test(narrow.id, event_type="image.completed")


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"url": "http://example.com/hook", "events": ["*"]}, "url"),
    ({"url": "https://example.com/" + "a" * 2048, "events": ["*"]}, "url"),
    ({"url": "not-a-url", "events": ["*"]}, "url"),
    ({"url": "https://example.com/hook", "events": []}, "events"),
    ({"url": "https://example.com/hook", "events": ["image.exploded"]}, "events"),
    ({"url": "https://example.com/hook", "events": "image.completed"}, "events"),
    (
        {"url": "https://example.com/hook", "events": ["*"], "metadata": {"k": "v" * 501}},
        "metadata",
    ),
    (
        {
            "url": "https://example.com/hook",
            "events": ["*"],
            "metadata": {str(i): "" for i in range(51)},
        },
        "metadata",
    ),
]


@pytest.mark.parametrize(("kwargs", "param"), INVALID)
async def test_invalid_endpoints_are_refused_before_sending(
    kwargs: dict[str, Any], param: str
) -> None:
    """URL scheme and length, event names and metadata limits are checked offline."""
    async with emulated() as (emu, client):
        with pytest.raises(InvalidParameterError) as info:
            await client.webhook_endpoints.create(**kwargs)
        assert info.value.param == param
        with pytest.raises(InvalidParameterError) as bad_event:
            await client.webhook_endpoints.test("we_1", event_type="image.exploded")
        assert bad_event.value.param == "event_type"
        assert emu.requests == []
