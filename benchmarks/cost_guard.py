"""The cost guard at batch scale: estimate calls and time to the first create.

``images.create_many(requests, max_cost=...)`` prices the batch before it creates
anything. Pricing every request alone (what it did before, and what a user's own loop of
``images.estimate`` does) costs one estimate call per request, paced by the
``estimate_post`` bucket (240 burst, 2 a second); pricing by shape costs one call per
distinct price shape. Both run here on 1,000 requests of one shape against an in-process
emulator whose buckets and the client's governor share one ``ScaledClock``, so every
figure is in API seconds. The baseline is the per-request loop, measured in the same run.

``python -m benchmarks.cost_guard [--quick]``
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from aurous_async import AsyncAurous
from aurous_async._clock import ScaledClock
from aurous_async.testing import run_emulator

SCALE = 100.0


def _requests(n: int) -> list[dict[str, str]]:
    return [{"prompt": f"a lighthouse, take {i}", "size": "2k_16_9"} for i in range(n)]


async def _by_shape(client: AsyncAurous, n: int) -> None:
    async with client.images.create_many(_requests(n), max_cost=n * 10) as batch:
        await batch.__anext__()


async def _one_by_one(client: AsyncAurous, n: int) -> None:
    requests = _requests(n)
    await asyncio.gather(*(client.images.estimate(**request) for request in requests))
    await client.images.create(**requests[0])


async def _measure(
    n: int, pricing: Callable[[AsyncAurous, int], Awaitable[None]]
) -> tuple[int, float]:
    """Estimate calls and API seconds from the call to the first create sent."""
    clock = ScaledClock(SCALE)
    async with (
        run_emulator(clock=clock, rate_clock=clock, initial_credits=n * 20.0) as emu,
        AsyncAurous(emu.api_key, base_url=emu.base_url, clock=clock, timeout=3600) as client,
    ):
        started = clock.time()
        await pricing(client, n)
        estimates = sum(1 for r in emu.requests if r.path.endswith("/estimate"))
        first = next(r for r in emu.requests if r.method == "POST" and r.path == "/v1/images")
        return estimates, first.at - started


async def main_async(quick: bool) -> str:
    n = 300 if quick else 1000
    base_calls, base_wait = await _measure(n, _one_by_one)
    calls, wait = await _measure(n, _by_shape)
    return "\n".join(
        [
            f"## Cost guard: pricing {n:,} requests of one shape (issue 18)",
            "",
            f"API seconds on a {SCALE:g}x clock shared by the emulator's buckets and the "
            "client's governor; the baseline prices every request alone (the SDK's way "
            "before pricing by shape), in the same run.",
            "",
            "| pricing | estimate calls | first create sent after (API s) |",
            "|---|---|---|",
            f"| one estimate per request (baseline) | {base_calls:,} | {base_wait:.1f} |",
            f"| `create_many(..., max_cost=...)`, by shape | {calls:,} | {wait:.2f} |",
        ]
    )


def run(quick: bool = False) -> str:
    """Run the cost-guard benchmark; return a markdown section."""
    return asyncio.run(main_async(quick))


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]))
