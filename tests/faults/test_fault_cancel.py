"""Cancellation mid-flight (issue 6): 1,000 concurrent waits cancelled leave the client
usable and close cleanly; a ``create_many`` batch closed or cancelled with creates in
flight loses none of them."""

from __future__ import annotations

import anyio
import pytest

from aurous_async import AsyncAurous, CreateMany, Generation
from aurous_async.testing import Emulator, Fault

from ._support import committed_ids, scenario

pytestmark = pytest.mark.anyio

JOBS = 250
WAITS_PER_JOB = 4  # 1,000 waits: some share a job, as real callers do


async def _create(client: AsyncAurous, n: int) -> list[Generation]:
    created: list[Generation] = []
    limit = anyio.Semaphore(32)

    async def one(i: int) -> None:
        async with limit:
            created.append(await client.images.create(prompt=f"waited on {i}"))

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return created


async def test_cancelling_1000_waits_mid_flight_leaves_the_client_usable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """1,000 waits (``wait`` and ``wait_for``) are cancelled while polls are in flight:
    none completes, the client still creates and waits, and closes with no task left."""
    # Jobs run on a real-time emulator clock (10-30 s each), so none ends by itself here.
    async with scenario(caplog, time_scale=1.0, initial_credits=10_000) as (emu, client):
        jobs = await _create(client, JOBS)
        finished: list[str] = []
        started = anyio.Event()
        running = 0

        async def wait(job: Generation, streaming: bool) -> None:
            nonlocal running
            running += 1
            if running == JOBS * WAITS_PER_JOB:
                started.set()
            if streaming:
                async for snapshot in client.wait_for(job.id):
                    if snapshot.is_terminal:
                        finished.append(snapshot.id)
            else:
                finished.append((await client.wait(job)).id)

        polls_before = len(emu.requests)
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for n in range(WAITS_PER_JOB):
                    for job in jobs:
                        tg.start_soon(wait, job, n % 2 == 1)
                await started.wait()
                with anyio.fail_after(10):
                    # Polls are under way once the emulator saw a few (no event for it).
                    while len(emu.requests) < polls_before + 5:  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
        assert finished == []

        # Still usable: a read, a create, and a wait that completes.
        assert (await client.images.get(jobs[0].id)).id == jobs[0].id
        fresh = await client.images.create(prompt="after the storm")
        emu.advance(600)
        with anyio.fail_after(10):
            done = await client.wait(fresh)
        assert done.is_terminal
        assert len(emu.generations()) == JOBS + 1


async def _recover(client: AsyncAurous, batch: CreateMany) -> list[str]:
    """What a user does with ``unreported``: re-send each create under its key."""
    recovered = []
    for create in batch.unreported:
        assert create.request["idempotency_key"] == create.idempotency_key
        made = create.generation or await client.images.create(**create.request)
        recovered.append(made.id)
    return recovered


def _assert_nothing_lost(emu: Emulator, yielded: list[str], recovered: list[str]) -> None:
    committed = committed_ids(emu)
    assert len(set(committed)) == len(committed)
    assert sorted(committed) == sorted(yielded + recovered)


async def test_closing_create_many_early_lists_every_create_in_flight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The consumer leaves after the first accepted job while three creates, already
    committed, hang: the three are in ``unreported`` with their keys (and a warning), the
    keys recover those same jobs, and the requests never started were never sent."""
    async with scenario(caplog) as (emu, client):
        emu.inject(Fault("hang_after_commit", match="POST /v1/images", times=3))
        requests = [{"prompt": f"early close {i}"} for i in range(6)]
        yielded: list[str] = []
        with anyio.fail_after(10):
            async with client.images.create_many(requests, max_concurrency=4) as batch:
                async for made in batch:
                    yielded.append(made.id)
                    break
        assert len(yielded) == 1
        assert len(batch.unreported) == 3
        assert {u.index for u in batch.unreported} < {0, 1, 2, 3}
        assert all(u.generation is None for u in batch.unreported)
        warning = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
        assert all(u.idempotency_key in warning for u in batch.unreported)
        emu.clear_faults()
        recovered = await _recover(client, batch)
        _assert_nothing_lost(emu, yielded, recovered)
        assert len(committed_ids(emu)) == 4  # requests 4 and 5 never started


async def test_cancelling_the_consumer_of_create_many_loses_no_create(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A deadline cancels the consuming task while every create hangs: the batch closes
    with no task left, and each create in flight is listed and recoverable."""
    async with scenario(caplog) as (emu, client):
        emu.inject(Fault("hang_after_commit", match="POST /v1/images", times=-1))
        batch = client.images.create_many([{"prompt": f"hung {i}"} for i in range(8)])
        with anyio.move_on_after(0.5) as deadline:
            async for _ in batch:
                pytest.fail("no create is answered")
        assert deadline.cancelled_caught
        assert len(batch.unreported) == 8
        emu.clear_faults()
        recovered = await _recover(client, batch)
        _assert_nothing_lost(emu, [], recovered)
