"""Waiting for many jobs: the shared poll scheduler vs naive per-job loops, and webhooks.

One in-process emulator per scenario with the documented rate-limit buckets, and one
``ScaledClock`` shared by the emulator's jobs and buckets, the client's governor and the
poller, so minutes of API time run in seconds and every delay is in API seconds. Jobs
are created through ``images.create_many`` (the documented ``images_post`` bucket paces
them at 1/s after a burst of 120) and vary from ~6 s to ~2 min, so dozens are in flight
at once. Detection delay = the moment the caller receives the terminal generation minus
the emulator's exact terminal moment (its row's ``completed_at`` float, not the
second-precision wire value).

``python -m benchmarks.pollers [--quick]``
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import aiohttp
from aiohttp import web

from aurous_async import AsyncAurous, Generation, GenerationStatus, PollPolicy
from aurous_async._clock import ScaledClock
from aurous_async._polling import PollScheduler
from aurous_async._waits import Waits
from aurous_async.testing import DOCUMENTED_BUCKETS, Emulator, run_emulator
from aurous_async.webhooks import WebhookReceiver


def requests_for(n: int, label: str = "bench") -> list[dict[str, Any]]:
    """Varied image jobs: 2k_1_1, 10-100 steps, 1-3 images (about 6-120 s each)."""
    return [
        {"prompt": f"{label} {i}", "steps": 10 + (i * 37) % 91, "count": 1 + i % 3}
        for i in range(n)
    ]


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Result:
    def __init__(self, name: str, emu: Emulator, delays: list[float], seen: int, wall: float):
        records = [r for r in emu.requests if r.method == "GET" and r.path.startswith("/v1/images")]
        self.name = name
        self.jobs = len(emu.generations())
        self.seen = seen
        self.gets = len(records)
        statuses = [r.status for r in records]
        self.get_429 = statuses.count(429)
        first = statuses.index(429) if 429 in statuses else len(statuses)
        self.after_first = statuses[first + 1 :].count(429)
        self.delays = delays
        self.wall = wall

    def row(self, scale: float) -> str:
        per_job = self.gets / max(1, self.jobs)
        p50, p95 = pct(self.delays, 0.5), pct(self.delays, 0.95)
        return (
            f"| {self.name} | {self.seen}/{self.jobs} | {self.gets} | {per_job:.2f} | "
            f"{self.get_429} | {self.after_first} | {p50 * 1000:.0f} | {p95 * 1000:.0f} | "
            f"{max(self.delays, default=0) * 1000:.0f} | {p50 * 1000 / scale:.1f} / "
            f"{p95 * 1000 / scale:.1f} | {self.wall:.1f} |"
        )


def completed_at(emu: Emulator, generation_id: str) -> float:
    moment = emu.state.generations.rows[generation_id].completed_at
    assert moment is not None
    return moment


async def scheduler_run(n: int, scale: float, *, webhooks: bool = False) -> Result:
    """The SDK: create_many piped into as_completed (optionally with webhooks attached)."""
    clock = ScaledClock(scale)
    delays: list[float] = []
    started = time.perf_counter()
    async with (
        run_emulator(
            clock=clock, rate_clock=clock, buckets=DOCUMENTED_BUCKETS, initial_credits=n * 20
        ) as emu,
        AsyncAurous(emu.api_key, base_url=emu.base_url, clock=clock, timeout=3600) as client,
    ):
        runner: web.AppRunner | None = None
        if webhooks:
            holder: list[WebhookReceiver] = []

            async def handle(request: web.Request) -> web.Response:
                return await holder[0].handle(request)

            app = web.Application()
            app.router.add_post("/hooks", handle)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            endpoint = await client.webhook_endpoints.create(
                url=f"http://127.0.0.1:{port}/hooks", events=["image.completed", "image.failed"]
            )
            assert endpoint.secret is not None
            holder.append(WebhookReceiver(endpoint.secret, clock=clock))
            client.attach_webhooks(holder[0])
        seen = 0
        try:
            stream = client.images.create_many(requests_for(n))
            async for done in client.as_completed(stream):
                delays.append(clock.time() - completed_at(emu, done.id))
                seen += 1
        finally:
            client.detach_webhooks()
            if runner is not None:
                await runner.cleanup()
        name = "shared scheduler + webhooks" if webhooks else "shared scheduler (polling)"
        return Result(name, emu, delays, seen, time.perf_counter() - started)


async def naive_run(n: int, scale: float) -> Result:
    """The baseline: asyncio.gather of per-job loops polling every 1 s, retrying 429s."""
    clock = ScaledClock(scale)
    delays: list[float] = []
    started = time.perf_counter()
    async with (
        run_emulator(
            clock=clock, rate_clock=clock, buckets=DOCUMENTED_BUCKETS, initial_credits=n * 20
        ) as emu,
        AsyncAurous(emu.api_key, base_url=emu.base_url, clock=clock, timeout=3600) as client,
        aiohttp.ClientSession(headers={"X-Api-Key": emu.api_key}) as session,
    ):

        async def poll(job: Generation) -> None:
            url = f"{emu.base_url}/v1/images/{job.id}"
            while True:
                async with session.get(url) as response:
                    body = await response.json()
                    if response.status == 429:
                        await clock.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                if body["status"] in {s.value for s in GenerationStatus if s.value in _TERMINAL}:
                    delays.append(clock.time() - completed_at(emu, job.id))
                    return
                await clock.sleep(1.0)

        tasks = [
            asyncio.create_task(poll(job))
            async for job in client.images.create_many(requests_for(n))
        ]
        await asyncio.gather(*tasks)
        return Result(
            "naive: gather of 1 s loops", emu, delays, len(delays), time.perf_counter() - started
        )


_TERMINAL = {"succeeded", "failed", "cancelled", "expired", "moderation_rejected"}


class _NeverSource:
    async def get(self, generation_id: str) -> tuple[Generation, float | None]:
        await asyncio.Event().wait()
        raise AssertionError

    async def page(self, cursor: str | None, limit: int) -> tuple[list[Generation], str | None]:
        await asyncio.Event().wait()
        raise AssertionError


async def memory_per_waiter(count: int) -> tuple[float, float]:
    """Bytes per waiting job: (scheduler state only, plus the caller's task running wait())."""
    clock = ScaledClock(1.0)
    scheduler = PollScheduler(_NeverSource(), clock, PollPolicy())
    waits = Waits(scheduler, requester=None)  # type: ignore[arg-type]
    created = datetime.now(timezone.utc)
    snapshots = [
        Generation(id=f"img_{i:08d}", status=GenerationStatus.PROCESSING, created_at=created)
        for i in range(count)
    ]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tasks = [asyncio.create_task(waits.wait(g)) for g in snapshots]
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    with_tasks = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    # The scheduler's share: its jobs, heap entries and watchers, measured alone.
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await scheduler.aclose()
    scheduler = PollScheduler(_NeverSource(), clock, PollPolicy())
    from aurous_async._polling import Watcher

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    watchers = [Watcher() for _ in range(count)]
    for g, w in zip(snapshots, watchers, strict=True):
        scheduler.watch(g, w)
    gc.collect()
    state_only = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    await scheduler.aclose()
    del watchers
    return state_only / count, with_tasks / count


async def main_async(quick: bool) -> str:
    n = 200 if quick else 1000
    scale = 25.0 if quick else 20.0
    ours = await scheduler_run(n, scale)
    naive = await naive_run(n, scale)
    hooks = await scheduler_run(n, scale, webhooks=True)
    waiters = 20_000 if quick else 100_000
    state_bytes, task_bytes = await memory_per_waiter(waiters)
    lines = [
        f"## Waiting for {n} jobs: shared poll scheduler vs naive loops\n",
        f"In-process emulator, documented buckets (GET 1200 burst, 600/min; images_post 120 "
        f"burst, 60/min), one clock at {scale:g}x for jobs, buckets, governor and poller. "
        f"Jobs are created by `images.create_many` (paced by images_post) and awaited with "
        f"`as_completed` (naive: `asyncio.gather` of per-job loops polling every 1 s, "
        f"sleeping `Retry-After` on 429). Delay = delivery to the caller minus the job's "
        f"exact terminal moment in API time; 'real ms' divides by the clock's scale (event-loop "
        f"latency is magnified {scale:g}x in API time).\n",
        "| waiter | terminal seen | GETs | GETs/job | 429s | 429s after first | "
        "delay p50 ms | delay p95 ms | delay max ms | p50 / p95 real ms | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        ours.row(scale),
        naive.row(scale),
        hooks.row(scale),
        "",
        f"Memory at {waiters:,} waiting jobs (tracemalloc): {state_bytes:.0f} B per job of "
        f"scheduler state; {task_bytes:.0f} B per waiter including the caller's asyncio task "
        f"running `client.wait()`.\n",
    ]
    return "\n".join(lines)


def run(quick: bool = False) -> str:
    """Run the poller benchmarks; return a markdown section."""
    return asyncio.run(main_async(quick))


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]))
