"""``AsyncAurous``: configuration, lifecycle, headers, retries, deadlines, errors, hygiene."""

from __future__ import annotations

import logging
import uuid
import warnings
from datetime import datetime, timezone
from typing import Any

import anyio
import pytest
from _sdk_helpers import FAST_RETRY, emulated, serve, settle
from aiohttp import web

from aurous_async import (
    API_VERSION,
    APITimeoutError,
    AsyncAurous,
    AurousError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GoneError,
    InsufficientCreditsError,
    Limits,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    RateLimitQueueTimeoutError,
    RetryPolicy,
    ServerError,
    Timeouts,
    UnprocessableEntityError,
    __version__,
)
from aurous_async._clock import ScaledClock
from aurous_async._requester import Call
from aurous_async.testing import Fault

pytestmark = pytest.mark.anyio

NO_RETRY = RetryPolicy(max_attempts=1)


class Recorder:
    """An echo endpoint that records request headers and can fail the first attempts."""

    def __init__(
        self,
        fail_first: int = 0,
        status: int = 503,
        code: str = "internal_error",
        extra: dict[str, str] | None = None,
    ):
        self.seen: list[dict[str, str]] = []
        self.fail_first = fail_first
        self.status = status
        self.code = code
        self.extra = extra or {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        headers = {"Aurous-Request-Id": f"req_{len(self.seen)}", **self.extra}
        if len(self.seen) <= self.fail_first:
            error = {"error": {"type": "server_error", "code": self.code, "message": "x"}}
            return web.json_response(error, status=self.status, headers=headers)
        body = {
            "id": "img_1",
            "status": "queued",
            "created_at": "2026-05-04T10:00:00Z",
            "credits": 1.0,
            "held_credits": 0.0,
            "available_credits": 1.0,
        }
        return web.json_response(body, status=201, headers=headers)


# --- configuration and lifecycle -------------------------------------------------------


async def test_environment_supplies_key_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """``AUROUS_API_KEY`` and ``AUROUS_BASE_URL`` are the defaults of the constructor."""
    monkeypatch.setenv("AUROUS_API_KEY", "al_live_env")
    monkeypatch.setenv("AUROUS_BASE_URL", "http://127.0.0.1:1/")
    client = AsyncAurous()
    assert client.base_url == "http://127.0.0.1:1"
    assert client.api_version == API_VERSION
    assert client.timeout == RetryPolicy().timeout
    await client.close()


async def test_missing_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key argument or environment variable the client cannot be built."""
    monkeypatch.delenv("AUROUS_API_KEY", raising=False)
    with pytest.raises(AurousError, match="AUROUS_API_KEY"):
        AsyncAurous()


async def test_closed_client_refuses_use() -> None:
    """After ``close`` (or the ``async with`` block) every call raises; close is idempotent."""
    async with emulated() as (_, client):
        await client.balance.get()
    assert client.closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.balance.get()
    await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        async with client:
            pass


async def test_unused_client_needs_no_cleanup() -> None:
    """A client that never sent anything holds no session, so dropping it warns nothing."""
    client = AsyncAurous("al_live_x", base_url="http://127.0.0.1:1")
    assert "open" not in repr(client)
    del client


async def test_explicit_close_without_context_manager() -> None:
    """``await client.close()`` releases the pool of a client used without ``async with``."""
    async with emulated() as (emu, _):
        client = AsyncAurous(emu.api_key, base_url=emu.base_url)
        await client.team.get()
        await client.close()
        assert client.closed


async def test_timeout_must_be_positive() -> None:
    """A non-positive timeout is a programming error caught at construction."""
    with pytest.raises(ValueError, match="timeout"):
        AsyncAurous("al_live_x", timeout=0)


# --- what every request carries --------------------------------------------------------


async def test_every_request_carries_key_version_and_user_agent() -> None:
    """``X-Api-Key``, the pinned ``Aurous-Version`` and a versioned User-Agent go out."""
    recorder = Recorder()
    async with serve([("GET", "/v1/balance", recorder.handle)]) as base:
        async with AsyncAurous("al_live_k", base_url=base) as client:
            await client.balance.get()
            await client.balance.get(api_version="2026-01-01")
        async with AsyncAurous("al_live_k", base_url=base, api_version="2025-12-12") as client:
            await client.balance.get()
    first, per_call, per_client = recorder.seen
    assert first["X-Api-Key"] == "al_live_k"
    assert first["Aurous-Version"] == API_VERSION
    assert first["User-Agent"] == f"aurous-async/{__version__}"
    assert first["Accept"] == "application/json"
    assert "Idempotency-Key" not in first
    assert per_call["Aurous-Version"] == "2026-01-01"
    assert per_client["Aurous-Version"] == "2025-12-12"


async def test_one_idempotency_key_per_logical_create() -> None:
    """A create mints one UUID4 key before its retry loop and sends it on every attempt."""
    recorder = Recorder(fail_first=2)
    async with (
        serve([("POST", "/v1/images", recorder.handle)]) as base,
        AsyncAurous("al_live_k", base_url=base, retry=FAST_RETRY) as client,
    ):
        await client.images.create(prompt="a")
        await client.images.create(prompt="b")
    keys = [seen["Idempotency-Key"] for seen in recorder.seen]
    assert len(keys) == 4
    assert keys[0] == keys[1] == keys[2] != keys[3]
    assert uuid.UUID(keys[0]).version == 4


async def test_in_flight_conflict_is_retried_with_the_same_key() -> None:
    """A 409 ``idempotency_key_in_use`` (original still in flight) is retried, same key."""
    recorder = Recorder(fail_first=2, status=409, code="idempotency_key_in_use")
    async with (
        serve([("POST", "/v1/videos", recorder.handle)]) as base,
        AsyncAurous("al_live_k", base_url=base, retry=FAST_RETRY) as client,
    ):
        await client.videos.create(video_lora_id="v", idempotency_key="k-1")
    assert [seen["Idempotency-Key"] for seen in recorder.seen] == ["k-1"] * 3


async def test_connection_pool_is_bounded() -> None:
    """``Limits(max_connections=2)`` keeps at most two requests on the wire at once."""
    active = 0
    peak = 0

    async def slow(request: web.Request) -> web.StreamResponse:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.01)
        active -= 1
        return web.json_response({"id": "team_1", "name": "t"})

    async with (
        serve([("GET", "/v1/team", slow)]) as base,
        AsyncAurous("al_live_k", base_url=base, limits=Limits(max_connections=2)) as client,
        anyio.create_task_group() as tg,
    ):
        for _ in range(8):
            tg.start_soon(client.team.get)
    assert peak == 2


async def test_unknown_version_pin_is_a_bad_request() -> None:
    """A per-call version the server does not know gives 400 ``unknown_version``."""
    async with emulated() as (_, client):
        with pytest.raises(BadRequestError) as info:
            await client.pricing.get(api_version="1999-01-01")
        assert info.value.code == "unknown_version"
        pricing = await client.pricing.get(api_version=API_VERSION)
        assert pricing.version == API_VERSION


# --- secrets ---------------------------------------------------------------------------


async def test_api_key_never_shows_in_repr_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The key stays out of reprs, of every log record and of exception text."""
    caplog.set_level(logging.DEBUG, logger="aurous_async")
    async with emulated() as (emu, client):
        key = emu.api_key
        assert key not in repr(client)
        assert key not in repr(client.images)
        assert key not in repr(client._requester)
        await client.images.create(prompt="x")
        emu.inject(Fault("status", match="GET /v1/balance", status=500))
        await client.balance.get()
        bad = AsyncAurous(key[:-1] + "0", base_url=emu.base_url)
        with pytest.raises(AuthenticationError) as info:
            await bad.balance.get()
        await bad.close()
        assert key[:-1] not in str(info.value)
        assert key[:-1] not in repr(info.value)
    assert caplog.records
    assert all(key not in record.getMessage() for record in caplog.records)


async def test_a_key_echoed_by_a_server_is_redacted_from_errors() -> None:
    """Even a server that echoes the key in its error message cannot leak it."""

    async def echo_key(request: web.Request) -> web.StreamResponse:
        message = f"bad key {request.headers['X-Api-Key']}"
        body = {"error": {"type": "authentication", "code": "invalid_api_key", "message": message}}
        return web.json_response(body, status=401)

    async with (
        serve([("GET", "/v1/team", echo_key)]) as base,
        AsyncAurous("al_live_supersecret", base_url=base) as client,
    ):
        with pytest.raises(AuthenticationError) as info:
            await client.team.get()
    assert "al_live_supersecret" not in str(info.value)
    assert "[redacted]" in str(info.value)


async def test_logging_is_quiet_by_default() -> None:
    """The SDK's logger has a ``NullHandler`` so nothing prints unless the app opts in."""
    logger = logging.getLogger("aurous_async")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)


# --- rate governor ---------------------------------------------------------------------


async def test_rate_limits_show_each_bucket_used() -> None:
    """``client.rate_limits`` reports the live state of every bucket seen."""
    async with emulated() as (_, client):
        assert client.rate_limits == {}
        await client.balance.get()
        await client.images.estimate(prompt="x")
        limits = client.rate_limits
        assert set(limits) == {"get", "estimate_post"}
        assert limits["get"].limit == 1200
        assert limits["estimate_post"].limit == 240
        assert limits["get"].in_flight == 0


async def test_governor_is_shared_and_paces_a_small_bucket() -> None:
    """Concurrent tasks of one client drain a bucket without a single 429."""
    async with emulated(rate_scale=2000.0) as (emu, client):
        async with anyio.create_task_group() as tg:
            for i in range(25):
                tg.start_soon(
                    lambda i=i: client.webhook_endpoints.create(
                        url=f"https://example.com/{i}", events=["*"]
                    )
                )
        statuses = [r.status for r in emu.requests if r.path == "/v1/webhook_endpoints"]
        assert statuses == [201] * 25


# --- retries and deadlines -------------------------------------------------------------


async def test_transient_server_errors_are_retried() -> None:
    """A GET that meets two 503s succeeds on the third attempt."""
    async with emulated() as (emu, client):
        emu.inject(Fault("status", match="GET /v1/balance", status=503, times=2))
        balance = await client.balance.get()
        assert balance.credits == 1000.0
        assert [r.status for r in emu.requests] == [503, 503, 200]


async def test_rate_limited_requests_wait_and_retry() -> None:
    """A 429 is retried after its ``Retry-After`` (on the injected fast clock)."""
    async with emulated() as (emu, client):
        emu.inject(Fault("rate_limit", match="GET /v1/team", retry_after=30))
        team = await client.team.get()
        assert team.id == emu.team_id
        assert [r.status for r in emu.requests] == [429, 200]


async def test_other_client_errors_are_never_retried() -> None:
    """A 404 is raised at once, with the server's request id."""
    async with emulated() as (emu, client):
        with pytest.raises(NotFoundError) as info:
            await client.loras.get("no-such-style")
        assert len(emu.requests) == 1
        assert info.value.request_id == emu.requests[0].request_id
        assert info.value.request_id in str(info.value)


async def test_exhausted_retries_raise_the_last_error() -> None:
    """When attempts run out the last server error is raised."""
    async with emulated() as (emu, client):
        emu.inject(Fault("status", match="GET /v1/team", status=502, times=-1))
        with pytest.raises(ServerError) as info:
            await client.team.get()
        assert info.value.status == 502
        assert len(emu.requests) == FAST_RETRY.max_attempts


@pytest.fixture(params=["timer", "scope"])
def deadline_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both deadline mechanisms: the shared loop timer, and Python 3.10's anyio scope."""
    if request.param == "scope":
        monkeypatch.setattr("aurous_async._deadline._NATIVE", False)
    return str(request.param)


@pytest.mark.usefixtures("deadline_kind")
async def test_one_deadline_covers_the_whole_call() -> None:
    """A per-call ``timeout`` bounds every attempt and wait; it raises ``APITimeoutError``."""
    async with emulated() as (emu, client):
        emu.inject(Fault("delay", match="GET /v1/team", delay=0.1))
        with anyio.fail_after(0.09), pytest.raises(APITimeoutError) as info:
            await client.team.get(timeout=0.02)
        assert isinstance(info.value, TimeoutError)
        assert "deadline" in str(info.value)


async def test_a_wait_for_a_permit_is_bounded_by_max_queue_wait_not_the_deadline() -> None:
    """A 429 pause longer than a call's timeout is pacing, not a failure: the deadline
    does not end it; ``max_queue_wait`` does, at once when the pause is known to be
    longer, and nothing is sent."""
    async with (
        emulated() as (emu, _),
        AsyncAurous(
            emu.api_key, base_url=emu.base_url, retry=FAST_RETRY, timeouts=Timeouts(read=0.05)
        ) as client,
    ):
        assert client._transport.attempt_bound < 1.2  # the call below starts deferred
        emu.inject(Fault("rate_limit", match="GET /v1/team", retry_after=30))
        with pytest.raises(RateLimitError):
            await client.team.get(timeout=0.5)  # the 429 pauses the bucket for 30 s
        started = anyio.current_time()
        with (
            anyio.fail_after(3),
            client.limit_queue_wait(1.2),
            pytest.raises(RateLimitQueueTimeoutError) as info,
        ):
            await client.team.get(timeout=1.2)
        assert anyio.current_time() - started < 1.0
        assert info.value.estimated_wait is not None
        assert info.value.estimated_wait > 29
        assert len(emu.requests) == 1


@pytest.mark.usefixtures("deadline_kind")
async def test_deadline_cutting_a_create_leaves_its_outcome_unknown() -> None:
    """A create cut by its deadline on the wire raises ``OutcomeUnknownError``; a replay
    with its key returns the generation the server went on to create."""
    async with emulated() as (emu, client):
        emu.inject(Fault("delay", match="POST /v1/images", delay=0.15))
        with pytest.raises(OutcomeUnknownError) as info:
            await client.images.create(prompt="slow", timeout=0.03)
        key = info.value.idempotency_key
        assert key is not None
        assert isinstance(info.value.__cause__, APITimeoutError)
        # The server may go on to process the cut request (or drop it): either way the
        # replay below must leave exactly one generation.
        for _ in range(40):
            if emu.generations():
                break
            await anyio.sleep(0.005)
        img = await client.images.create(prompt="slow", idempotency_key=key)
        assert [row["id"] for row in emu.generations()] == [img.id]


async def test_client_timeout_is_the_default_deadline() -> None:
    """The client's ``timeout`` applies when a call gives none."""
    clock = ScaledClock(1000.0)
    async with (
        emulated() as (emu, _),
        AsyncAurous(emu.api_key, base_url=emu.base_url, timeout=0.05, clock=clock) as client,
    ):
        emu.inject(Fault("delay", match="GET /v1/balance", delay=0.1))
        with pytest.raises(APITimeoutError):
            await client.balance.get()


async def test_connection_refused_is_retried_then_raised() -> None:
    """Nothing listening: the call is retried, then raises ``APIConnectionError``."""
    from aurous_async import APIConnectionError

    async with AsyncAurous("al_live_x", base_url="http://127.0.0.1:9", retry=FAST_RETRY) as c:
        with pytest.raises(APIConnectionError) as info:
            await c.balance.get()
    assert info.value.maybe_sent is False


# --- deprecation and version echo ------------------------------------------------------


async def test_deprecated_route_warns_once_per_route() -> None:
    """``Aurous-Deprecated``/``Sunset`` on a route gives one ``DeprecationWarning``."""
    before_sunset = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()
    async with emulated(start_time=before_sunset) as (_, client):
        img = await client.images.create(prompt="legacy")
        call = Call(
            method="GET",
            path=f"/v1/generations/{img.id}",
            route="/v1/generations/{id}",
            idempotent=True,
        )
        with pytest.warns(DeprecationWarning, match="Sunset"):
            reply = await client._requester.send(call)
        assert isinstance(reply.data, dict)
        assert reply.data["id"] == img.id
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await client._requester.send(call)


async def test_a_different_echoed_version_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """When the server applies another version than the pin, a warning is logged once."""
    recorder = Recorder(extra={"Aurous-Version": "2099-01-01"})
    caplog.set_level(logging.WARNING, logger="aurous_async")
    async with (
        serve([("GET", "/v1/balance", recorder.handle)]) as base,
        AsyncAurous("al_live_k", base_url=base) as client,
    ):
        await client.balance.get()
        await client.balance.get()
    messages = [r.getMessage() for r in caplog.records if "2099-01-01" in r.getMessage()]
    assert len(messages) == 1
    assert API_VERSION in messages[0]


# --- every documented error status maps to its class -----------------------------------


async def _scenario(name: str, emu: Any, client: AsyncAurous) -> None:
    if name == "401":
        async with AsyncAurous("al_live_" + "0" * 64, base_url=emu.base_url) as other:
            await other.balance.get()
    elif name == "401-revoked":
        key = emu.add_key(emu.team_id, "full")
        emu.revoke_key(key)
        async with AsyncAurous(key, base_url=emu.base_url) as other:
            await other.balance.get()
    elif name == "403":
        key = emu.add_key(emu.team_id, "read")
        async with AsyncAurous(key, base_url=emu.base_url) as other:
            await other.images.create(prompt="x")
    elif name == "402":
        emu.set_credits(emu.team_id, 0)
        await client.images.create(prompt="x")
    elif name == "404":
        await client.images.get("img_missing")
    elif name == "409":
        await client.images.create(prompt="a", idempotency_key="same")
        await client.images.create(prompt="b", idempotency_key="same")
    elif name in ("410", "422"):
        if name == "422":
            emu.force_next_outcome("failed")
        img = await client.images.create(prompt="x")
        settle(emu)
        if name == "410":
            emu.advance(emu.settings.output_retention + 1)
        await client.images.download(img.id)
    elif name == "429":
        emu.inject(Fault("rate_limit", match="GET /v1/team", retry_after=7))
        await client.team.get()
    elif name == "429-concurrency":
        await client.images.create(prompt="one")
        await client.images.create(prompt="two")
    else:
        emu.inject(Fault("status", match="GET /v1/team", status=int(name)))
        await client.team.get()


ERROR_TABLE = [
    ("401", AuthenticationError, "invalid_api_key"),
    ("401-revoked", AuthenticationError, "revoked_api_key"),
    ("403", PermissionDeniedError, "missing_scope"),
    ("402", InsufficientCreditsError, "balance_too_low"),
    ("404", NotFoundError, "resource_not_found"),
    ("409", ConflictError, "idempotency_key_in_use"),
    ("410", GoneError, "output_expired"),
    ("422", UnprocessableEntityError, "output_not_available"),
    ("429", RateLimitError, "too_many_requests"),
    ("429-concurrency", RateLimitError, "concurrency_limit_exceeded"),
    ("500", ServerError, "internal_error"),
    ("502", ServerError, "provider_unavailable"),
    ("503", ServerError, "provider_unavailable"),
    ("504", ServerError, "provider_timeout"),
]


@pytest.mark.parametrize(("scenario", "cls", "code"), ERROR_TABLE)
async def test_error_statuses_map_to_classes(scenario: str, cls: type, code: str) -> None:
    """Each documented error answer raises its class with code, status and request id."""
    settings: dict[str, Any] = {}
    if scenario == "429-concurrency":
        settings["concurrency_limit"] = 1
    async with emulated(retry=NO_RETRY, **settings) as (emu, client):
        with pytest.raises(cls) as info:
            await _scenario(scenario, emu, client)
        err = info.value
        assert type(err) is cls
        assert err.code == code
        assert err.status == int(scenario[:3])
        assert err.request_id is not None
        assert err.request_id.startswith("req_")
        if scenario.startswith("429"):
            assert err.retry_after is not None
            assert err.retry_after >= 1
        assert str(err.status) in str(err)
        assert err.code in str(err)
