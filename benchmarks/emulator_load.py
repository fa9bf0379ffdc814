"""How much mixed traffic the emulator holds on one core, next to a bare aiohttp server.

The emulator runs in its own process pinned to core 0; this load generator runs on core 1.
Traffic mix per worker loop: create, estimate, 6 x get-generation, balance, list.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter

import aiohttp
import attrs

from ._proc import pin_to, server_process

DEMO_KEY_ENV = "AUROUS_API_KEY"


@attrs.frozen
class LoadResult:
    name: str
    requests: int
    seconds: float
    errors: int
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def _drive(
    base_url: str, api_key: str, seconds: float, workers: int, name: str
) -> LoadResult:
    headers = {"X-Api-Key": api_key}
    connector = aiohttp.TCPConnector(limit=workers)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    ids: list[str] = []
    body = {"prompt": "a lighthouse at dusk, volumetric fog", "size": "2k_1_1"}
    async with aiohttp.ClientSession(base_url, headers=headers, connector=connector) as http:
        async with http.post("/v1/images", json=body) as r:
            first = await r.json()
            ids.append(first.get("id", "img_missing"))
        deadline = time.perf_counter() + seconds

        async def call(method: str, path: str, payload: object | None = None) -> None:
            nonlocal errors
            start = time.perf_counter()
            try:
                async with http.request(method, path, json=payload) as r:
                    data = await r.read()
                    statuses[r.status] += 1
                    if r.status >= 400:
                        errors += 1
                    elif method == "POST" and path == "/v1/images":
                        ids.append(data.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode())
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - start)

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await call("POST", "/v1/images", body)
                await call("POST", "/v1/images/estimate", body)
                for _ in range(6):
                    await call("GET", f"/v1/images/{random.choice(ids)}")
                await call("GET", "/v1/balance")
                await call("GET", "/v1/images?limit=20")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        name=name,
        requests=len(latencies),
        seconds=elapsed,
        errors=errors,
        statuses=dict(statuses),
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99) - 1] * 1000,
    )


def run(seconds: float = 10.0, workers: int = 32) -> list[LoadResult]:
    """Measure the bare baseline, then the emulator, with the same client and mix."""
    pin_to(1)
    results = []
    with server_process(["-m", "benchmarks._bare_server"]) as url:
        results.append(asyncio.run(_drive(url, "unused", seconds, workers, "bare aiohttp server")))
    emulator_args = [
        "-m", "aurous_async.testing", "--port", "0", "--time-scale", "50",
        "--bucket-scale", "10000", "--credits", "100000000", "--no-request-log",
    ]  # fmt: skip
    from aurous_async.testing import DEMO_API_KEY

    with server_process(emulator_args) as url:
        results.append(asyncio.run(_drive(url, DEMO_API_KEY, seconds, workers, "emulator")))
    return results


def table(results: list[LoadResult]) -> str:
    base = results[0].rps
    lines = [
        "| server (1 core) | requests | req/s | vs bare | errors | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.requests} | {r.rps:,.0f} | {r.rps / base:.2f}x | {r.errors} "
            f"| {r.p50_ms:.1f} | {r.p99_ms:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
