"""The ``aurous_async`` logger: one DEBUG record per finished call, INFO for retries,
rate-limit pauses and deprecations, each with structured fields and no secret."""

from __future__ import annotations

import asyncio
import logging
import warnings
from datetime import datetime, timezone

import pytest
from _sdk_helpers import emulated

from aurous_async import NotFoundError
from aurous_async._requester import Call
from aurous_async.testing import Fault

pytestmark = pytest.mark.anyio

_FIELDS = (
    "aurous_method",
    "aurous_route",
    "aurous_status",
    "aurous_request_id",
    "aurous_attempts",
    "aurous_queued",
)


def _ours(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "aurous_async" and r.levelno == level]


async def test_a_finished_call_logs_one_debug_record_with_its_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A successful GET gives one DEBUG record carrying route, status, request id,
    attempts and seconds queued as attributes."""
    caplog.set_level(logging.DEBUG, logger="aurous_async")
    async with emulated() as (_emu, client):
        image = await client.images.create(prompt="x")
        caplog.clear()
        fetched = await client.images.get(image.id)
    (record,) = _ours(caplog, logging.DEBUG)
    assert record.aurous_method == "GET"
    assert record.aurous_route == "/v1/images/{id}"
    assert record.aurous_status == 200
    assert record.aurous_request_id == fetched.request_id
    assert record.aurous_attempts == 1
    assert record.aurous_queued == 0.0
    assert image.id not in record.getMessage()  # the template, not the path


async def test_a_failed_call_logs_its_error_type(caplog: pytest.LogCaptureFixture) -> None:
    """A call that gives up logs one DEBUG record naming the error and its status."""
    caplog.set_level(logging.DEBUG, logger="aurous_async")
    async with emulated() as (_emu, client):
        with pytest.raises(NotFoundError) as raised:
            await client.images.get("img_missing")
    (record,) = _ours(caplog, logging.DEBUG)
    assert record.aurous_error == "NotFoundError"
    assert record.aurous_status == 404
    assert record.aurous_request_id == raised.value.request_id
    assert record.aurous_route == "/v1/images/{id}"


async def test_a_retry_logs_info_with_the_wait(caplog: pytest.LogCaptureFixture) -> None:
    """Each retried attempt gives an INFO record with the status and the wait before the next."""
    caplog.set_level(logging.INFO, logger="aurous_async")
    async with emulated() as (emu, client):
        emu.inject(Fault("status", match="GET /v1/balance", status=503, times=2))
        await client.balance.get()
    records = _ours(caplog, logging.INFO)
    assert [r.aurous_attempts for r in records] == [1, 2]
    assert all(r.aurous_status == 503 for r in records)
    assert all(r.aurous_route == "/v1/balance" for r in records)
    assert all(r.aurous_retry_in >= 0 for r in records)
    assert all(r.aurous_error == "ServerError" for r in records)
    assert _ours(caplog, logging.DEBUG) == []  # DEBUG is not on


async def test_a_rate_limit_pause_logs_info_with_the_seconds_queued(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call that waits for a permit (the bucket's first answer is not in yet) logs it."""
    caplog.set_level(logging.INFO, logger="aurous_async")
    async with emulated() as (_emu, client):
        await asyncio.gather(*(client.images.create(prompt="x") for _ in range(2)))
    (record,) = _ours(caplog, logging.INFO)
    assert record.aurous_bucket == "images_post"
    assert record.aurous_route == "/v1/images"
    assert record.aurous_queued > 0


async def test_a_deprecated_route_logs_info_once(caplog: pytest.LogCaptureFixture) -> None:
    """A route the API marks deprecated gives one INFO record with the server's detail."""
    caplog.set_level(logging.INFO, logger="aurous_async")
    before_sunset = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()
    async with emulated(start_time=before_sunset) as (_, client):
        image = await client.images.create(prompt="legacy")
        call = Call(
            method="GET",
            path=f"/v1/generations/{image.id}",
            route="/v1/generations/{id}",
            idempotent=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await client._requester.send(call)
            await client._requester.send(call)
    (record,) = _ours(caplog, logging.INFO)
    assert record.aurous_route == "/v1/generations/{id}"
    assert "Sunset" in record.aurous_deprecation
    assert record.aurous_status == 200


async def test_no_record_carries_a_key_secret_prompt_or_signed_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At DEBUG, no record's message or field shows the API key, a webhook secret, the
    prompt or an output URL's signature."""
    caplog.set_level(logging.DEBUG, logger="aurous_async")
    prompt = "a secret prompt about lighthouses"
    async with emulated() as (emu, client):
        endpoint = await client.webhook_endpoints.create(
            url="http://127.0.0.1:9/hook", events=["image.completed"]
        )
        emu.inject(Fault("status", match="POST /v1/images", status=503))
        image = await client.wait(await client.images.create(prompt=prompt))
        await client.images.download(image)
    url = image.output_urls[0]
    secrets = [emu.api_key, endpoint.secret, prompt, url.split("?", 1)[1]]
    assert all(secrets)
    records = [r for r in caplog.records if r.name == "aurous_async"]
    assert len(records) >= 4
    texts = [r.getMessage() for r in records] + [
        f"{k}={v}" for r in records for k, v in vars(r).items() if k.startswith("aurous_")
    ]
    assert [t for t in texts for s in secrets if s and str(s) in t] == []
    for record in records:
        assert set(_FIELDS) - {"aurous_attempts", "aurous_queued"} <= set(vars(record))
