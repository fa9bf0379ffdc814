"""Creates survive lost answers: one Idempotency-Key per logical call, never a duplicate."""

from __future__ import annotations

import pytest
from _sdk_helpers import FAST_RETRY, emulated

from aurous_async import APIConnectionError, OutcomeUnknownError, RetryPolicy, ServerError
from aurous_async.testing import Fault

pytestmark = pytest.mark.anyio


def posts(emu: object, path: str = "/v1/images") -> list[int]:
    return [r.status for r in emu.requests if r.method == "POST" and r.path == path]  # type: ignore[attr-defined]


async def test_answer_lost_after_commit_yields_exactly_one_generation() -> None:
    """The connection drops after the server committed; the retry replays, no duplicate."""
    async with emulated() as (emu, client):
        emu.inject(Fault("drop_after_commit", match="POST /v1/images"))
        img = await client.images.create(prompt="committed once")
        rows = emu.generations()
        assert [row["id"] for row in rows] == [img.id]
        assert posts(emu) == [201, 201]


async def test_outcome_unknown_carries_the_key_and_a_replay_resolves_it() -> None:
    """When every attempt loses its answer, the error carries the key that resolves it."""
    retry = RetryPolicy(max_attempts=3, timeout=60, initial_wait=0.001, max_wait=0.01, jitter=0)
    async with emulated(retry=retry) as (emu, client):
        emu.inject(Fault("drop_after_commit", match="POST /v1/images", times=-1))
        with pytest.raises(OutcomeUnknownError) as info:
            await client.images.create(prompt="unknown outcome")
        err = info.value
        assert isinstance(err, APIConnectionError)
        assert err.idempotency_key is not None
        assert err.idempotency_key in str(err)
        assert len(posts(emu)) == 3
        assert len(emu.generations()) == 1
        emu.clear_faults()
        img = await client.images.create(
            prompt="unknown outcome", idempotency_key=err.idempotency_key
        )
        assert [row["id"] for row in emu.generations()] == [img.id]


async def test_caller_key_is_used_on_every_attempt() -> None:
    """A caller's ``idempotency_key`` is the one the outcome error reports."""
    retry = RetryPolicy(max_attempts=2, timeout=60, initial_wait=0.001, max_wait=0.01, jitter=0)
    async with emulated(retry=retry) as (emu, client):
        emu.inject(Fault("drop_after_commit", match="POST /v1/videos", times=-1))
        with pytest.raises(OutcomeUnknownError) as info:
            await client.videos.create(video_lora_id="seedance-1-pro", idempotency_key="mine-1")
        assert info.value.idempotency_key == "mine-1"
        assert len(emu.generations()) == 1


async def test_server_errors_on_create_are_retried_under_the_same_key() -> None:
    """A 503 before processing is retried with the same key and creates once."""
    async with emulated() as (emu, client):
        emu.inject(Fault("status", match="POST /v1/images", status=503, times=2))
        img = await client.images.create(prompt="after two 503s")
        assert posts(emu) == [503, 503, 201]
        assert [row["id"] for row in emu.generations()] == [img.id]


async def test_persistent_server_errors_on_create_end_in_outcome_unknown() -> None:
    """5xx on every attempt of a create leaves its outcome unknown, key attached."""
    retry = RetryPolicy(max_attempts=2, timeout=60, initial_wait=0.001, max_wait=0.01, jitter=0)
    async with emulated(retry=retry) as (emu, client):
        emu.inject(Fault("status", match="POST /v1/images", status=500, times=-1))
        with pytest.raises(OutcomeUnknownError) as info:
            await client.images.create(prompt="never")
        assert isinstance(info.value.__cause__, ServerError)
        assert info.value.idempotency_key is not None


async def test_dropped_before_processing_is_retried() -> None:
    """A connection cut before processing is retried and creates exactly once."""
    async with emulated() as (emu, client):
        emu.inject(Fault("drop_before", match="POST /v1/images"))
        img = await client.images.create(prompt="second try")
        assert [row["id"] for row in emu.generations()] == [img.id]


async def test_garbled_success_body_is_retried_as_a_replay() -> None:
    """A 201 whose body is not JSON is retried; the replay returns the original."""
    async with emulated() as (emu, client):
        emu.inject(Fault("malformed_body", match="POST /v1/images"))
        img = await client.images.create(prompt="garbled")
        assert [row["id"] for row in emu.generations()] == [img.id]
        assert posts(emu) == [201, 201]


async def test_truncated_success_body_is_retried_as_a_replay() -> None:
    """A 201 cut short is retried under the same key and creates exactly once."""
    async with emulated() as (emu, client):
        emu.inject(Fault("truncated_body", match="POST /v1/images"))
        img = await client.images.create(prompt="truncated")
        assert [row["id"] for row in emu.generations()] == [img.id]


async def test_non_idempotent_create_is_not_retried_after_an_ambiguous_failure() -> None:
    """A create with no idempotency key support gets one attempt, then an outcome error."""
    async with emulated(retry=FAST_RETRY) as (emu, client):
        emu.inject(Fault("drop_after_commit", match="POST /v1/webhook_endpoints"))
        with pytest.raises(OutcomeUnknownError) as info:
            await client.webhook_endpoints.create(
                url="https://example.com/hook", events=["image.completed"]
            )
        assert info.value.idempotency_key is None
        assert len(posts(emu, "/v1/webhook_endpoints")) == 1
