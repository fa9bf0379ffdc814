"""Network and server faults, as a user of the client sees them (issue 6).

Each scenario checks what a user would: no duplicate generation on the server, no job id
lost (every committed generation is known to the caller, or reachable through the
idempotency key its error carries), a typed error where one is due; ``scenario()`` adds
no leaked task or session and no secret in the logs.
"""

from __future__ import annotations

import time

import anyio
import pytest

from aurous_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AuthenticationError,
    Generation,
    GoneError,
    OutcomeUnknownError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from aurous_async.testing import Fault

from ._support import assert_no_secret, committed_ids, scenario

pytestmark = pytest.mark.anyio

BATCH = 12
#: Three attempts, then give up (the budget is on the client's 1000x clock).
SHORT_RETRY = RetryPolicy(max_attempts=3, timeout=3600, initial_wait=0.001, max_wait=0.01, jitter=0)


async def _batch(client: object, n: int, prefix: str) -> list[Generation]:
    results: list[Generation] = []

    async def one(i: int) -> None:
        results.append(await client.images.create(prompt=f"{prefix} {i}"))  # type: ignore[attr-defined]

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return results


async def test_connection_dropped_after_commit_in_a_concurrent_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Half a batch loses its answers after the server committed: every create returns
    its generation once, and the server holds exactly one row per call."""
    async with scenario(caplog) as (emu, client):
        emu.inject(Fault("drop_after_commit", match="POST /v1/images", times=BATCH // 2))
        results = await _batch(client, BATCH, "dropped")
        assert sorted(g.id for g in results) == sorted(committed_ids(emu))
        assert len(set(committed_ids(emu))) == BATCH
        replays = [r for r in emu.requests if r.method == "POST" and r.status == 201]
        assert len(replays) == BATCH + BATCH // 2


async def test_5xx_burst_shorter_than_the_retry_budget_is_invisible(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A burst of 503s on reads and creates ends in success, one row per create."""
    async with scenario(caplog) as (emu, client):
        emu.inject(Fault("status", match="POST /v1/images", status=503, times=4))
        emu.inject(Fault("status", match="GET /v1/balance", status=502, times=4))
        created = await client.images.create(prompt="after a burst")
        balance = await client.balance.get()
        assert committed_ids(emu) == [created.id]
        assert balance.available_credits == 999  # one image, held or charged, once


async def test_5xx_burst_longer_than_the_budget_gives_typed_errors_and_a_usable_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An endless 500 burst: a read raises ServerError; a create raises
    OutcomeUnknownError whose key, replayed later, creates exactly one generation."""
    async with scenario(caplog, retry=SHORT_RETRY) as (emu, client):
        emu.inject(Fault("status", status=500, times=-1))
        with pytest.raises(ServerError) as read:
            await client.team.get()
        assert read.value.status == 500
        assert read.value.request_id is not None
        with pytest.raises(OutcomeUnknownError) as created:
            await client.images.create(prompt="burst")
        key = created.value.idempotency_key
        assert key is not None
        assert committed_ids(emu) == []
        emu.clear_faults()
        first = await client.images.create(prompt="burst", idempotency_key=key)
        again = await client.images.create(prompt="burst", idempotency_key=key)
        assert first.id == again.id
        assert committed_ids(emu) == [first.id]
        assert_no_secret(caplog, [emu.api_key], read.value, created.value)


async def test_hung_read_past_the_deadline_is_a_timeout(caplog: pytest.LogCaptureFixture) -> None:
    """A GET that never answers raises APITimeoutError (a TimeoutError) at the deadline."""
    async with scenario(caplog) as (emu, client):
        created = await client.images.create(prompt="hung read")
        emu.inject(Fault("hang", match="GET /v1/images/", times=-1))
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            await client.images.get(created.id, timeout=0.4)
        assert isinstance(info.value, TimeoutError)
        assert time.monotonic() - started < 5.0
        emu.clear_faults()
        assert (await client.images.get(created.id)).id == created.id


async def test_hung_create_past_the_deadline_keeps_its_job_reachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A create committed but never answered ends in OutcomeUnknownError at the deadline;
    its key recovers that same generation: nothing lost, nothing duplicated."""
    async with scenario(caplog) as (emu, client):
        emu.inject(Fault("hang_after_commit", match="POST /v1/images", times=-1))
        with pytest.raises(OutcomeUnknownError) as info:
            await client.images.create(prompt="hung create", timeout=0.4)
        error = info.value
        assert isinstance(error, APIConnectionError)
        assert error.idempotency_key is not None
        assert len(committed_ids(emu)) == 1
        emu.clear_faults()
        recovered = await client.images.create(
            prompt="hung create", idempotency_key=error.idempotency_key
        )
        assert committed_ids(emu) == [recovered.id]


async def test_429_storm_is_ridden_out_without_duplicates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Five 429s in a row with Retry-After: the create and the read still succeed once."""
    async with scenario(caplog) as (emu, client):
        emu.inject(Fault("rate_limit", match="POST /v1/images", times=5, retry_after=2))
        emu.inject(Fault("rate_limit", match="GET /v1/team", times=5, retry_after=1))
        created = await client.images.create(prompt="storm")
        await client.team.get()
        assert committed_ids(emu) == [created.id]
        statuses = [r.status for r in emu.requests if r.path == "/v1/images"]
        assert statuses == [429] * 5 + [201]


async def test_endless_429_storm_raises_rate_limit_error_and_creates_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the storm outlasts the budget the error is a RateLimitError with the wait,
    not an unknown outcome: a refused request was never processed."""
    async with scenario(caplog, retry=SHORT_RETRY) as (emu, client):
        emu.inject(Fault("rate_limit", match="POST /v1/images", times=-1, retry_after=1))
        with pytest.raises(RateLimitError) as info:
            await client.images.create(prompt="refused")
        assert not isinstance(info.value, OutcomeUnknownError)
        assert info.value.status == 429
        assert info.value.retry_after == 1
        assert committed_ids(emu) == []


@pytest.mark.parametrize("kind", ["truncated_body", "malformed_body"])
async def test_broken_bodies_on_reads_and_creates_are_retried_safely(
    caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """A 2xx body cut short or garbled is retried: reads succeed, creates replay."""
    async with scenario(caplog) as (emu, client):
        emu.inject(Fault(kind, match="POST /v1/images", times=2))  # type: ignore[arg-type]
        emu.inject(Fault(kind, match="GET /v1/images", times=2))  # type: ignore[arg-type]
        created = await client.images.create(prompt=kind)
        page = await client.images.list().collect()
        assert [g.id for g in page] == [created.id]
        assert committed_ids(emu) == [created.id]


@pytest.mark.parametrize("kind", ["truncated_body", "malformed_body"])
async def test_persistently_broken_bodies_give_typed_errors(
    caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """Every answer broken: a read raises APIConnectionError, a create an outcome error
    whose key finds the one committed generation."""
    async with scenario(caplog, retry=SHORT_RETRY) as (emu, client):
        emu.inject(Fault(kind, times=-1))  # type: ignore[arg-type]
        with pytest.raises(APIConnectionError) as read:
            await client.balance.get()
        assert not isinstance(read.value, OutcomeUnknownError)
        assert isinstance(read.value, APIResponseValidationError) is (kind == "malformed_body")
        with pytest.raises(OutcomeUnknownError) as info:
            await client.images.create(prompt="never readable")
        assert len(committed_ids(emu)) == 1
        emu.clear_faults()
        found = await client.images.create(
            prompt="never readable", idempotency_key=info.value.idempotency_key
        )
        assert committed_ids(emu) == [found.id]


async def test_expired_output_url_is_a_gone_error_not_a_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Past retention the output URL answers 410: GoneError at once, one request only."""
    async with scenario(caplog, output_retention=3600.0) as (emu, client):
        created = await client.images.create(prompt="short-lived")
        emu.advance(120)
        done = await client.images.get(created.id)
        assert done.status == "succeeded"
        assert await client.images.download(done)
        emu.advance(2 * 3600)
        before = len(emu.requests)
        with pytest.raises(GoneError) as info:
            await client.images.download(done)
        assert (info.value.status, info.value.code) == (410, "output_expired")
        assert len(emu.requests) == before + 1
        token = done.output_urls[0].split("token=", 1)[1]
        assert_no_secret(caplog, [token], info.value)


async def test_key_rotated_mid_batch_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Rotating the key halfway through a batch: the old key works through its grace
    period, every create lands once, and after it the old key fails typed, unretried."""
    async with scenario(caplog) as (emu, client):
        results: list[Generation] = []
        new_key = ""
        for i in range(BATCH):
            if i == BATCH // 2:
                new_key = emu.rotate_key(emu.api_key)
            results.append(await client.images.create(prompt=f"rotating {i}"))
        assert [g.id for g in results] == committed_ids(emu)
        emu.advance(25 * 3600)
        before = len(emu.requests)
        with pytest.raises(AuthenticationError) as info:
            await client.images.create(prompt="old key")
        assert info.value.code == "invalid_api_key"
        assert len(emu.requests) == before + 1
        assert len(committed_ids(emu)) == BATCH
        assert_no_secret(caplog, [new_key], info.value)


async def test_key_revoked_mid_batch_every_call_resolves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Revoking the key under a concurrent batch: each create either returns its
    generation or raises AuthenticationError; the server holds exactly the returned ones."""
    async with scenario(caplog) as (emu, client):
        returned: list[str] = []
        refused: list[AuthenticationError] = []

        async def one(i: int) -> None:
            try:
                returned.append((await client.images.create(prompt=f"revoked {i}")).id)
            except AuthenticationError as exc:
                refused.append(exc)

        async with anyio.create_task_group() as tg:
            for i in range(BATCH * 2):
                tg.start_soon(one, i)
                if i == BATCH:
                    await anyio.sleep(0.05)
                    emu.revoke_key(emu.api_key)
        assert len(returned) + len(refused) == BATCH * 2
        assert refused
        assert all(exc.code == "revoked_api_key" for exc in refused)
        assert sorted(returned) == sorted(committed_ids(emu))
