"""Fleet mode (issue 15): N processes on one key share one rate budget through Redis.

One standalone emulator and one redis-server, each in its own process. Per N (1, 2, 4,
8) the same batch, M jobs split evenly over N worker processes, each creating its share
with ``images.create_many`` piped into ``as_completed``; once with ``redis_url`` (one
shared budget) and once with local governors only (each process believes it has the
whole bucket). Every run gets a fresh emulator (full buckets) and an empty Redis.

**Bound.** The ``images_post`` bucket (``C`` burst, ``r`` per second) admits the i-th
create (0-based, in the order the server saw them) no earlier than
``a_i = max(0, i - C + 1) / r`` after the first, and job i then runs ``d_i`` (its
``completed_at - created_at``, divided by the emulator's time scale), so no fleet can
finish before ``max_i(a_i + d_i)``. Wall = the last worker's last terminal generation
minus the common start. 429s and GETs per job are the emulator's own counts
(``GET /_emulator/stats``).

**The cost of sharing.** One process, one emulator, one Redis: interleaved rounds of
sequential ``images.get`` calls on a client with ``redis_url`` and one without, in the
same process. Client CPU per call (``time.process_time``), latency per call, and the
Redis round trips per call (``INFO commandstats``: script calls and pings): one reserve
on the call's path, which carries the previous call's observation (the last one of a
round is sent by a background task after 50 ms).

``python -m benchmarks --only fleet [--quick]``; ``python -m benchmarks.fleet [--quick]``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp
import attrs
import redis

from aurous_async import AsyncAurous, RetryPolicy

from ._proc import CLIENT_CORE, SERVER_CORE, pin_to, pinned, server
from .pollers import pct, requests_for

#: The emulator's images bucket: a burst of 40, refilled at 20 a second (a batch of a
#: few hundred jobs is then paced for seconds, not minutes).
CAPACITY = 40
PER_SECOND = 20.0
#: Job lifecycles run this many times faster than real time (6-120 API s -> 0.1-2 s).
TIME_SCALE = 60.0
CONTROL_TOKEN = "fleet-bench-control"
#: Retries generous enough that the storm without Redis still finishes the batch.
RETRY = RetryPolicy(max_attempts=30, timeout=600.0)
_TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired", "moderation_rejected"})


# --- servers ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server without persistence on a free port, pinned to the server core."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--loglevel", "warning"]
    proc = subprocess.Popen(pinned(command, SERVER_CORE), stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.01)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_timeout=1) as link:
            return bool(link.ping())
    except redis.ConnectionError:
        return False


#: The commands a fleet client sends during a run (``INFO commandstats`` also counts the
#: commands scripts run inside, which are no round trips).
_ROUND_TRIPS = ("cmdstat_evalsha", "cmdstat_ping", "cmdstat_publish")


def redis_round_trips(url: str) -> int:
    """Round trips clients have made to Redis so far (scripts, pings, publishes)."""
    with redis.Redis.from_url(url) as link:
        stats = link.info("commandstats")
    return sum(int(stats[name]["calls"]) for name in _ROUND_TRIPS if name in stats)


def _flush(url: str) -> None:
    with redis.Redis.from_url(url) as link:
        link.flushall()


@contextlib.contextmanager
def emulator(buckets: Sequence[str]) -> Iterator[tuple[str, str]]:
    """A standalone emulator (own process, server core): (base URL, demo API key)."""
    args = ["-m", "aurous_async.testing", "--port", "0", "--time-scale", str(TIME_SCALE)]
    args += ["--credits", "1e9", "--no-request-log", "--control-token", CONTROL_TOKEN]
    for bucket in buckets:
        args += ["--bucket", bucket]
    with server(args, banner_lines=2) as running:
        yield running.url, running.banner[1].rsplit(" ", 1)[-1]


async def _control(base_url: str, path: str) -> Any:
    headers = {"Authorization": f"Bearer {CONTROL_TOKEN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/_emulator/{path}", headers=headers) as answer,
    ):
        answer.raise_for_status()
        return await answer.json()


# --- the batch --------------------------------------------------------------------------


async def _batch_worker(base_url: str, api_key: str, redis_url: str, jobs: int, label: str) -> None:
    """One fleet process: wait for the start time on stdin, run its share, print a JSON line."""
    if os.environ.get("AUROUS_FLEET_BENCH_LOG"):  # each retry and fleet event on stderr
        logging.basicConfig(level=logging.INFO, format="%(created).3f %(process)d %(message)s")
    async with AsyncAurous(
        api_key, base_url=base_url, redis_url=redis_url or None, retry=RETRY, timeout=600
    ) as client:
        print("ready", flush=True)
        start_at = float(await asyncio.to_thread(sys.stdin.readline))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        done: list[dict[str, float]] = []
        error = None
        try:
            requests = requests_for(jobs, label)
            async for job in client.as_completed(client.images.create_many(requests)):
                assert job.completed_at is not None
                done.append(
                    {
                        "created_at": job.created_at.timestamp(),
                        "run": (job.completed_at - job.created_at).total_seconds(),
                        "seen_at": time.time(),
                    }
                )
        except Exception as exc:  # reported in the table, not hidden
            error = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"done": done, "error": error}), flush=True)


@attrs.frozen
class BatchRun:
    """One batch run's figures."""

    processes: int
    shared: bool
    jobs: int
    finished: int
    wall: float
    bound: float
    refused: int
    gets: int
    errors: tuple[str, ...]
    #: Seconds from the first create to the last, as the server dated them.
    create_span: float
    routes: tuple[tuple[str, int], ...] = ()

    @property
    def ratio(self) -> float:
        return self.wall / self.bound if self.bound > 0 else float("nan")

    @property
    def pacing(self) -> float:
        """The creates' span over the bucket's bound for it, ``(M - C) / r``."""
        return self.create_span / (max(1, self.jobs - CAPACITY) / PER_SECOND)


def _bound(done: list[dict[str, float]]) -> float:
    ordered = sorted(done, key=lambda job: job["created_at"])
    return max(
        max(0, i - CAPACITY + 1) / PER_SECOND + job["run"] / TIME_SCALE
        for i, job in enumerate(ordered)
    )


def batch_run(processes: int, jobs: int, redis_url: str | None) -> BatchRun:
    """Run ``jobs`` jobs over ``processes`` worker processes against a fresh emulator."""
    bucket = f"images_post={CAPACITY}/{PER_SECOND * 60:g}"
    with emulator([bucket]) as (base_url, api_key):
        if redis_url:
            _flush(redis_url)
        command = [sys.executable, "-m", "benchmarks.fleet", "--batch-worker", base_url]
        workers = [
            subprocess.Popen(
                [*command, redis_url or "", str(jobs // processes), f"p{n}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "AUROUS_API_KEY": api_key},
            )
            for n in range(processes)
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None
                if worker.stdout.readline().strip() != "ready":
                    raise RuntimeError("a fleet worker did not start")
            start_at = time.time() + 0.3
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write(f"{start_at}\n")
                worker.stdin.flush()
            reports = []
            for worker in workers:
                assert worker.stdout is not None
                reports.append(json.loads(worker.stdout.readline()))
        finally:
            for worker in workers:
                with contextlib.suppress(OSError):
                    worker.kill()
                worker.wait()
        stats = asyncio.run(_control(base_url, "stats"))["requests"]
    done = [job for report in reports for job in report["done"]]
    wall = max((job["seen_at"] for job in done), default=start_at) - start_at
    return BatchRun(
        processes=processes,
        shared=bool(redis_url),
        jobs=jobs,
        finished=len(done),
        wall=wall,
        bound=_bound(done) if done else float("nan"),
        refused=int(stats["by_status"].get("429", 0)),
        gets=sum(n for route, n in stats["by_route"].items() if route.startswith("GET ")),
        errors=tuple(report["error"] for report in reports if report["error"]),
        create_span=_span(done),
        routes=tuple(sorted(stats["by_route"].items())),
    )


def _span(done: list[dict[str, float]]) -> float:
    created = [job["created_at"] for job in done]
    return (max(created) - min(created)) / TIME_SCALE if created else float("nan")


# --- the cost of sharing ---------------------------------------------------------------


async def _cost_worker(
    base_url: str, api_key: str, redis_url: str, rounds: int, calls: int
) -> None:
    """Interleaved rounds of sequential ``images.get``, with and without ``redis_url``."""
    pin_to(CLIENT_CORE)
    figures: dict[str, dict[str, list[float]]] = {
        mode: {"cpu": [], "latency": [], "redis": []} for mode in ("local", "shared")
    }
    async with (
        AsyncAurous(api_key, base_url=base_url) as local,
        AsyncAurous(api_key, base_url=base_url, redis_url=redis_url) as shared,
    ):
        job = await local.images.create(prompt="cost of sharing")
        for client in (local, shared):  # warm: connections, the GET bucket's first answer
            for _ in range(20):
                await client.images.get(job.id)
        await asyncio.sleep(0.2)
        for n in range(2 * rounds):
            mode = ("local", "shared")[n % 2] if (n // 2) % 2 == 0 else ("shared", "local")[n % 2]
            client = shared if mode == "shared" else local
            commands = redis_round_trips(redis_url)
            latencies = []
            cpu = time.process_time()
            for _ in range(calls):
                started = time.perf_counter()
                await client.images.get(job.id)
                latencies.append(time.perf_counter() - started)
            cpu = time.process_time() - cpu
            await asyncio.sleep(0.15)  # the last observation lands (sent after 50 ms)
            figures[mode]["redis"].append((redis_round_trips(redis_url) - commands) / calls)
            figures[mode]["cpu"].append(cpu / calls)
            figures[mode]["latency"].append(statistics.median(latencies))
    print(json.dumps(figures), flush=True)


def cost_run(redis_url: str, rounds: int, calls: int) -> dict[str, dict[str, list[float]]]:
    """The cost-of-sharing rounds in a worker process pinned to the client core."""
    with emulator(["get=1000000/600"]) as (base_url, api_key):
        command = [sys.executable, "-m", "benchmarks.fleet", "--cost-worker", base_url]
        out = subprocess.run(
            [*command, redis_url, str(rounds), str(calls)],
            env={**os.environ, "AUROUS_API_KEY": api_key},
            capture_output=True,
            text=True,
            check=True,
        )
    figures: dict[str, dict[str, list[float]]] = json.loads(out.stdout.splitlines()[-1])
    return figures


# --- the section -----------------------------------------------------------------------


def run(quick: bool = False) -> str:
    """Run the fleet benchmark; return its markdown section."""
    counts = (1, 8) if quick else (1, 2, 4, 8)
    jobs = 120 if quick else 400
    rows: list[BatchRun] = []
    with redis_server() as redis_url:
        for processes in counts:
            for shared in (True, False):
                result = batch_run(processes, jobs, redis_url if shared else None)
                print(f"[fleet] {result}", file=sys.stderr, flush=True)
                rows.append(result)
        cost = cost_run(redis_url, rounds=6 if quick else 20, calls=100 if quick else 200)
    return _section(rows, cost, jobs, quick)


def _section(
    rows: list[BatchRun], cost: dict[str, dict[str, list[float]]], jobs: int, quick: bool
) -> str:
    lines = [
        "## fleet",
        "",
        f"{jobs} image jobs split over N processes on one key (`create_many` into "
        f"`as_completed`), one standalone emulator (images bucket {CAPACITY} burst, "
        f"{PER_SECOND:g}/s; jobs {TIME_SCALE:g}x faster), one redis-server. Wall against "
        "the `images_post` bound (see the module docstring); the creates' span (first to "
        "last, as the server dated them) against the bucket's own bound for them, "
        f"`(M - {CAPACITY}) / {PER_SECOND:g}` s; 429s and GETs counted by the emulator. "
        "Wall includes detecting the last jobs by polling (default `PollPolicy`: at least "
        "1 s between polls).",
        "",
        "| N | governors | wall s | bound s | wall - bound s | wall / bound "
        "| creates' span / bound | 429s | GETs per job | jobs done |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mode = "shared (redis_url)" if row.shared else "local only"
        lines.append(
            f"| {row.processes} | {mode} | {row.wall:.2f} | {row.bound:.2f} "
            f"| {row.wall - row.bound:.2f} | {row.ratio:.3f} "
            f"| {row.pacing:.3f} | {row.refused} | {row.gets / max(1, row.finished):.2f} "
            f"| {row.finished}/{row.jobs}"
            + (f" ({'; '.join(row.errors)[:120]})" if row.errors else "")
            + " |"
        )
    shared8 = [
        row for row in rows if row.shared and row.processes == max(r.processes for r in rows)
    ]
    verdict = []
    if shared8:
        last = shared8[0]
        verdict.append(
            f"At N = {last.processes} with Redis: wall / bound {last.ratio:.3f} (target <= 1.05), "
            f"{last.refused} 429s (target <= 1)."
        )
    local, shared = cost["local"], cost["shared"]
    cpu_local, cpu_shared = statistics.median(local["cpu"]), statistics.median(shared["cpu"])
    lat_local = statistics.median(local["latency"])
    lat_shared = statistics.median(shared["latency"])
    lines += [
        "",
        *verdict,
        "",
        "**The cost of sharing** (one process pinned to its core; interleaved rounds of "
        f"sequential `images.get`, {len(local['cpu'])} rounds per mode; medians of per-round "
        "figures):",
        "",
        "| | without redis_url | with redis_url | ratio |",
        "|---|---|---|---|",
        f"| client CPU per call, us | {cpu_local * 1e6:.0f} | {cpu_shared * 1e6:.0f} "
        f"| {cpu_shared / cpu_local:.2f}x |",
        f"| latency per call (median), us | {lat_local * 1e6:.0f} | {lat_shared * 1e6:.0f} "
        f"| {lat_shared / lat_local:.2f}x |",
        f"| latency p90 of rounds, us | {pct(local['latency'], 0.9) * 1e6:.0f} "
        f"| {pct(shared['latency'], 0.9) * 1e6:.0f} | |",
        f"| Redis round trips per call | {statistics.median(local['redis']):.2f} "
        f"| {statistics.median(shared['redis']):.2f} | |",
        "",
        "With `redis_url`, a call waits for one Redis round trip: the reserve script, which "
        "first settles the answers of this process's earlier calls. An answer no call "
        "follows within 50 ms is sent by a background task.",
    ]
    if quick:
        lines += ["", "_Quick mode: N = 1 and 8 only, fewer jobs and rounds._"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--batch-worker"]:
        base_url, redis_url, jobs, label = args[1:5]
        asyncio.run(
            _batch_worker(base_url, os.environ["AUROUS_API_KEY"], redis_url, int(jobs), label)
        )
        return 0
    if args[:1] == ["--cost-worker"]:
        base_url, redis_url, rounds, calls = args[1:5]
        asyncio.run(
            _cost_worker(base_url, os.environ["AUROUS_API_KEY"], redis_url, int(rounds), int(calls))
        )
        return 0
    print(run(quick="--quick" in args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
