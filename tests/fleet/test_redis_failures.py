"""Fleet mode when Redis fails: bounded typed errors, one warning, rejoin, no full bucket."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from _redis import RedisServer

from aurous_async._errors import FleetUnavailableError, InvalidParameterError
from aurous_async._fleet._protocol import Observation
from aurous_async._fleet._redis_buckets import RedisBuckets

from ._stores import BASE_URL, T0, connect

pytestmark = pytest.mark.anyio

BUCKET = "get"
_LOGGER = "aurous_async.fleet"


async def test_a_malformed_url_is_a_usage_error_before_anything_is_sent() -> None:
    """``connect`` with a malformed URL raises InvalidParameterError naming ``redis_url``."""
    with pytest.raises(InvalidParameterError) as caught:
        await RedisBuckets.connect("http://127.0.0.1:6379", base_url=BASE_URL, api_key="k")
    assert caught.value.param == "redis_url"


async def test_a_malformed_url_never_shows_its_password() -> None:
    """The usage error for a malformed URL shows it with the password redacted."""
    with pytest.raises(InvalidParameterError) as caught:
        await RedisBuckets.connect(
            "redis://:hunter2@127.0.0.1:notaport/0", base_url=BASE_URL, api_key="k"
        )
    assert "hunter2" not in str(caught.value)
    assert ":***@" in str(caught.value)


async def test_unreachable_redis_at_start_names_the_url_without_password() -> None:
    """No server on the port: a prompt FleetUnavailableError naming the redacted URL."""
    free = RedisServer()  # a free port nobody listens on
    url = f"redis://:hunter2@127.0.0.1:{free.port}/0"
    started = time.monotonic()
    with pytest.raises(FleetUnavailableError) as caught:
        await connect(url)
    assert time.monotonic() - started < 2.0
    message = str(caught.value)
    assert "hunter2" not in message
    assert f"redis://:***@127.0.0.1:{free.port}/0" in message
    assert "\n" not in message


@pytest.mark.parametrize("given", ["wrong-password", None])
async def test_wrong_or_missing_password_is_one_line_without_the_password(
    redis_factory: Callable[..., RedisServer], given: str | None
) -> None:
    """A refused AUTH (or none given to a protected server) is one redacted line."""
    server = redis_factory(password="right-password")
    auth = f":{given}@" if given else ""
    with pytest.raises(FleetUnavailableError) as caught:
        await connect(f"redis://{auth}127.0.0.1:{server.port}/0")
    message = str(caught.value)
    assert "refused the credentials" in message
    assert "wrong-password" not in message
    assert "right-password" not in message
    assert f"127.0.0.1:{server.port}" in message
    assert "\n" not in message


async def test_the_right_password_connects(redis_factory: Callable[..., RedisServer]) -> None:
    """A password-protected server is used when the URL carries its password."""
    server = redis_factory(password="right-password")
    store = await connect(server.url)
    try:
        assert (await store.reserve(BUCKET)).granted
    finally:
        await store.aclose()


async def test_a_stopped_redis_fails_each_call_fast_and_logs_once(
    redis_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP: every call fails within its bound; one warning, then one info on return."""
    server = redis_factory()
    store = await connect(server.url, call_timeout=0.2)
    caplog.set_level(logging.INFO, logger=_LOGGER)
    try:
        await store.reserve(BUCKET)
        server.pause()
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(FleetUnavailableError):
                await store.reserve(BUCKET)
            assert time.monotonic() - started < 0.6
        server.resume()
        assert (await store.reserve(BUCKET)).known is False  # the probe is still out
        levels = [record.levelno for record in caplog.records if record.name == _LOGGER]
        assert levels == [logging.WARNING, logging.INFO]
    finally:
        server.resume()
        await store.aclose()


async def test_a_killed_redis_fails_fast_and_is_rejoined_after_restart(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """A dead server fails calls at once; the restarted one is used again (scripts reload)."""
    server = redis_factory()
    store = await connect(server.url, call_timeout=0.2)
    try:
        await store.reserve(BUCKET)
        server.stop()
        started = time.monotonic()
        with pytest.raises(FleetUnavailableError):
            await store.reserve(BUCKET)
        assert time.monotonic() - started < 0.6
        server.start()
        assert (await store.reserve(BUCKET)).granted
    finally:
        await store.aclose()


async def test_redis_restarted_empty_reads_unknown_not_full(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """After a restart the bucket is probed with one request, not granted in full."""
    server = redis_factory()
    store = await connect(server.url)
    try:
        probe = await store.reserve(BUCKET, now=T0)
        await store.observe(BUCKET, probe.ticket, Observation(200, 1200, 1199, None, 10.0), now=T0)
        grant = await store.reserve(BUCKET, now=T0)
        assert grant.known
        server.restart()
        first = await store.reserve(BUCKET, now=T0 + 1)
        second = await store.reserve(BUCKET, now=T0 + 1)
        assert first.granted
        assert not first.known
        assert not second.granted
        # The answer to a request granted before the restart settles nothing new.
        await store.observe(
            BUCKET, grant.ticket, Observation(200, 1200, 1000, None, 10.0), now=T0 + 1
        )
        assert (await store.reserve(BUCKET, now=T0 + 1)).known
    finally:
        await store.aclose()


async def test_levels_not_corrected_since_a_loss_are_probed_again(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """Back from losing Redis, a bucket with no answer since is probed; a corrected one is not."""
    server = redis_factory()
    store = await connect(server.url, call_timeout=0.2)
    other = await connect(server.url, call_timeout=0.2)
    headers = Observation(200, 1200, 1199, None, 10.0)
    try:
        for bucket in (BUCKET, "images_post"):
            probe = await other.reserve(bucket, now=T0)
            await other.observe(bucket, probe.ticket, headers, now=T0)
        assert (await store.reserve(BUCKET, now=T0)).known
        server.pause()
        with pytest.raises(FleetUnavailableError):
            await store.reserve(BUCKET, now=T0 + 1)
        server.resume()
        # Another process's answer corrected this bucket after the loss: it is trusted.
        grant = await other.reserve("images_post", now=T0 + 3)
        await other.observe("images_post", grant.ticket, headers, now=T0 + 3)
        assert (await store.reserve("images_post", now=T0 + 5)).known
        back = await store.reserve(BUCKET, now=T0 + 5)
        assert back.granted
        assert not back.known
        assert not (await other.reserve(BUCKET, now=T0 + 5)).granted
        await store.observe(BUCKET, back.ticket, headers, now=T0 + 5.1)
        assert (await store.reserve(BUCKET, now=T0 + 5.1)).known
    finally:
        await store.aclose()
        await other.aclose()
