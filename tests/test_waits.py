"""Waits against the emulator over real sockets: order, timeouts, failures, webhooks, fan-out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from aiohttp import web

from aurous_async import (
    AsyncAurous,
    BadRequestError,
    CostLimitExceededError,
    Generation,
    GenerationFailedError,
    GenerationStatus,
    InvalidParameterError,
    NotFoundError,
    PollPolicy,
    WaitTimeoutError,
)
from aurous_async._clock import ScaledClock
from aurous_async.testing import DOCUMENTED_BUCKETS, Emulator, run_emulator
from aurous_async.webhooks import WebhookReceiver

pytestmark = pytest.mark.anyio

VIDEO_LORA = "seedance-1-lite"


@contextlib.asynccontextmanager
async def world(
    scale: float = 200.0, polling: PollPolicy | None = None, **settings: Any
) -> AsyncIterator[tuple[Emulator, AsyncAurous]]:
    """One fast clock for jobs, buckets, the governor and the poller; documented buckets."""
    clock = ScaledClock(scale)
    settings.setdefault("buckets", DOCUMENTED_BUCKETS)
    async with (
        run_emulator(clock=clock, rate_clock=clock, **settings) as emu,
        AsyncAurous(
            emu.api_key, base_url=emu.base_url, clock=clock, polling=polling or PollPolicy()
        ) as client,
    ):
        yield emu, client


def gets(emu: Emulator) -> list[int]:
    return [r.status for r in emu.requests if r.method == "GET" and r.path.startswith("/v1/images")]


@pytest.mark.parametrize("kind", ["image", "video"])
async def test_wait_for_yields_current_state_then_each_change(kind: str) -> None:
    """Images and videos alike: queued first, then processing, then succeeded, then the end."""
    async with world() as (_emu, client):
        if kind == "image":
            job = await client.images.create(prompt="a lighthouse")
        else:
            job = await client.videos.create(video_lora_id=VIDEO_LORA, duration=2)
        statuses = [snap.status async for snap in client.wait_for(job)]
    assert statuses == ["queued", "processing", "succeeded"]


async def test_wait_by_id_polls_first_and_returns_the_terminal_generation() -> None:
    """An id alone is fetched at once; wait returns the final generation."""
    async with world() as (_emu, client):
        job = await client.images.create(prompt="a lighthouse")
        final = await client.wait(job.id)
        assert final.id == job.id
        assert final.status is GenerationStatus.SUCCEEDED
        assert final.output_urls


async def test_on_progress_yields_field_changes_too() -> None:
    """With on_progress, a change of other fields yields even when the status stays."""
    async with world() as (_emu, client):
        job = await client.images.create(prompt="a lighthouse")
        stale = await client.images.get(job.id)
        changed = [s async for s in client.wait_for(stale, on_progress=True)]
        assert changed[-1].is_terminal
        assert len({(s.status, s.completed_at) for s in changed}) == len(changed)


async def test_timeout_raises_with_the_last_snapshot_and_keeps_the_job() -> None:
    """WaitTimeoutError is a TimeoutError carrying the id and last snapshot; the job runs on."""
    async with world() as (emu, client):
        job = await client.images.create(prompt="a lighthouse")
        emu.force_outcome(job.id, "processing")
        # Waiting from a processing snapshot: at 200x, the 20 s deadline is 100 ms of real
        # time, and a stall of the test process can pass it before a poll is absorbed
        # (seen about one run in five: one GET sent, none absorbed). The last snapshot
        # would then be the queued one.
        job = await client.images.get(job.id)
        with pytest.raises(TimeoutError) as info:
            await client.wait(job, timeout=20.0)
        error = info.value
        assert isinstance(error, WaitTimeoutError)
        assert error.generation_id == job.id
        assert error.last is not None
        assert error.last.status is GenerationStatus.PROCESSING
        assert emu.generations()[-1]["status"] == "processing"


async def test_cancel_on_timeout_cancels_the_job_on_the_server() -> None:
    """cancel_on_timeout cancels remotely and reports the cancelled generation."""
    async with world() as (emu, client):
        job = await client.images.create(prompt="a lighthouse")
        emu.force_outcome(job.id, "processing")
        with pytest.raises(WaitTimeoutError) as info:
            await client.wait(job, timeout=5.0, cancel_on_timeout=True)
        assert emu.generations()[-1]["status"] == "cancelled"
        last = info.value.last
        assert last is not None
        assert last.status is GenerationStatus.CANCELLED
        posts = [r for r in emu.requests if r.path.endswith("/cancel")]
        assert len(posts) == 1


async def test_raise_on_failure_carries_the_final_generation() -> None:
    """A failed job raises GenerationFailedError with the generation; by default it returns."""
    async with world() as (emu, client):
        emu.force_next_outcome("failed", "provider exploded")
        job = await client.images.create(prompt="a lighthouse")
        with pytest.raises(GenerationFailedError) as info:
            await client.wait(job, raise_on_failure=True)
        assert info.value.generation.status is GenerationStatus.FAILED
        assert info.value.generation.error_message == "provider exploded"
        assert (await client.wait(job)).status is GenerationStatus.FAILED


async def test_reserved_terminal_statuses_end_the_wait() -> None:
    """Forced expired / moderation_rejected (A18) are terminal for waits too."""
    async with world() as (emu, client):
        one = await client.images.create(prompt="a")
        two = await client.images.create(prompt="b")
        emu.force_outcome(one.id, "expired")
        emu.force_outcome(two.id, "moderation_rejected")
        done = {g.id: g.status async for g in client.as_completed([one, two])}
    assert done == {one.id: "expired", two.id: "moderation_rejected"}


async def test_as_completed_sees_every_job_without_a_429_storm() -> None:
    """200 jobs: every terminal state arrives once, no 429 after the first, few GETs per job."""
    async with world(scale=100.0, initial_credits=10_000) as (emu, client):
        requests = [{"prompt": f"job {i}", "steps": 10 + i % 50} for i in range(200)]
        seen: list[Generation] = []
        with anyio.fail_after(60):
            async for done in client.as_completed(client.images.create_many(requests)):
                seen.append(done)
        statuses = gets(emu)
        assert len({g.id for g in seen}) == 200
        assert all(g.is_terminal for g in seen)
        first = statuses.index(429) if 429 in statuses else len(statuses)
        assert 429 not in statuses[first + 1 :]
        assert len(statuses) / 200 < 5


async def test_as_completed_yields_in_completion_order() -> None:
    """A short job created after a long one is yielded first."""
    async with world() as (_emu, client):
        long = await client.images.create(prompt="slow", size="4k_1_1", steps=100)
        short = await client.images.create(prompt="fast", steps=1, size="2k_1_1")
        order = [g.id async for g in client.as_completed([long, short])]
    assert order == [short.id, long.id]


async def test_as_completed_surfaces_a_lost_job() -> None:
    """An unknown id in as_completed raises NotFoundError naming it; it is never dropped."""
    async with world() as (_emu, client):
        job = await client.images.create(prompt="fine")
        with pytest.raises(NotFoundError) as info:
            async for _ in client.as_completed([job, "img_doesnotexist"]):
                pass
        assert info.value.generation_id == "img_doesnotexist"


async def test_as_completed_timeout_lists_what_is_pending() -> None:
    """The deadline raises WaitTimeoutError with the ids not finished."""
    async with world() as (emu, client):
        stuck = await client.images.create(prompt="stuck")
        emu.force_outcome(stuck.id, "processing")
        with pytest.raises(WaitTimeoutError) as info:
            async for _ in client.as_completed([stuck], timeout=5.0):
                pass
        assert info.value.pending == (stuck.id,)


async def test_cancelling_a_waiting_task_leaks_nothing() -> None:
    """Cancelled waits unregister; the driver stops; no task is left behind."""
    async with world() as (emu, client):
        job = await client.images.create(prompt="stuck")
        emu.force_outcome(job.id, "processing")
        before = asyncio.all_tasks()
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(client.wait, job)
            tg.start_soon(client.wait, job.id)
            await anyio.sleep(0.05)
            assert client._poller.running
            tg.cancel_scope.cancel()
        for _ in range(50):
            if not client._poller.running:
                break
            await anyio.sleep(0.01)
        assert client._poller.watched == 0
        assert not client._poller.running
        await anyio.sleep(0.01)
        assert asyncio.all_tasks() <= before


async def test_closing_the_client_stops_the_poller() -> None:
    """close() ends a running driver and a waiting task sees an error, not a hang."""
    async with world() as (emu, client):
        job = await client.images.create(prompt="stuck")
        emu.force_outcome(job.id, "processing")
        errors: list[BaseException] = []

        async def waiter() -> None:
            try:
                await client.wait(job)
            except Exception as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.02)
            await client.close()
        assert errors
        assert not client._poller.running


async def test_generate_creates_and_waits() -> None:
    """images.generate and videos.generate return terminal generations."""
    async with world() as (_emu, client):
        image = await client.images.generate(prompt="a lighthouse")
        video = await client.videos.generate(video_lora_id=VIDEO_LORA, duration=2)
    assert image.status is GenerationStatus.SUCCEEDED
    assert video.status is GenerationStatus.SUCCEEDED
    assert video.id.startswith("vid_")


async def test_cost_guard_refuses_before_anything_is_submitted() -> None:
    """Past max_cost, create_many raises CostLimitExceededError and posts no create."""
    async with world() as (emu, client):
        requests = [{"prompt": "same"}] * 30 + [{"prompt": "other", "count": 4}]
        with pytest.raises(CostLimitExceededError) as info:
            async for _ in client.images.create_many(requests, max_cost=20):
                pass
        assert info.value.estimated == pytest.approx(34.0)
        assert info.value.max_cost == 20
        posts = [r for r in emu.requests if r.path in ("/v1/images", "/v1/videos")]
        assert posts == []
        estimates = [r for r in emu.requests if r.path.endswith("/estimate")]
        assert len(estimates) == 2


async def test_create_many_validates_every_request_first() -> None:
    """One bad request refuses the batch before any create is sent."""
    async with world() as (emu, client):
        requests: list[dict[str, object]] = [{"prompt": "ok"}, {"prompt": "x", "steps": 0}]
        with pytest.raises(InvalidParameterError):
            async for _ in client.images.create_many(requests):
                pass
        with pytest.raises(InvalidParameterError, match="unknown"):
            async for _ in client.videos.create_many([{"video_lora_id": VIDEO_LORA, "x": 1}]):
                pass
        assert [r for r in emu.requests if r.method == "POST"] == []


async def test_create_many_within_budget_yields_each_accepted_job() -> None:
    """Under max_cost every request becomes one distinct generation."""
    async with world() as (emu, client):
        requests = [{"prompt": f"p{i}"} for i in range(10)]
        made = [g async for g in client.images.create_many(requests, max_cost=10)]
        assert len({g.id for g in made}) == 10
        assert len(emu.generations()) == 10


async def test_attached_webhooks_resolve_waits_with_almost_no_polls() -> None:
    """With a receiver attached, jobs complete from their events; polls drop to the safety net."""
    async with world(scale=100.0) as (emu, client):
        receivers: list[WebhookReceiver] = []

        async def handle(request: web.Request) -> web.Response:
            return await receivers[0].handle(request)

        app = web.Application()
        app.router.add_post("/hooks", handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            endpoint = await client.webhook_endpoints.create(
                url=f"http://127.0.0.1:{port}/hooks", events=["image.completed", "image.failed"]
            )
            assert endpoint.secret is not None
            receivers.append(WebhookReceiver(endpoint.secret, clock=emu.clock))
            client.attach_webhooks(receivers[0])
            jobs = [await client.images.create(prompt=f"hook {i}") for i in range(10)]
            before = len(gets(emu))
            done = [g async for g in client.as_completed(jobs)]
            assert len(done) == 10
            assert all(g.status is GenerationStatus.SUCCEEDED for g in done)
            assert len(gets(emu)) - before <= 2
            assert client._poller.stats["pushes"] >= 10
        finally:
            client.detach_webhooks()
            await runner.cleanup()


async def test_as_completed_sees_accepted_jobs_through_when_a_create_fails() -> None:
    """A refused create is raised only after the jobs accepted before it were yielded."""
    async with world() as (emu, client):
        requests = [{"prompt": f"p{i}"} for i in range(3)]
        requests.append({"prompt": "an aurous-blocked-test-word here"})
        stream = client.images.create_many(requests, max_concurrency=1)
        seen: list[str] = []

        async def consume() -> None:
            async for done in client.as_completed(stream):
                seen.append(done.id)

        with pytest.raises(BadRequestError) as info:
            await consume()
        assert info.value.code == "prompt_blocked"
        assert sorted(seen) == sorted(g["id"] for g in emu.generations())
        assert len(seen) == 3
