"""Cancelling 1,000 concurrent waits mid-flight leaves the client usable and closes
cleanly (issue 6)."""

from __future__ import annotations

import anyio
import pytest

from aurous_async import AsyncAurous, Generation

from ._support import scenario

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
