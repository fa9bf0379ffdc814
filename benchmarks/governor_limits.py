"""The rate governor against rate limits it does not know: wall time vs bound, and 429s.

One in-process emulator per scenario, its ``images_post`` bucket set to a plan the SDK's
table does not describe, and one ``ScaledClock`` shared by the emulator's buckets and the
client's governor, so minutes of API time run in about a second; every figure is in API
seconds. Each scenario fires ``n`` concurrent ``images.create`` calls with
``asyncio.gather`` (the naive fan-out). The bound is the bucket's own: the burst at once,
then one create per refill interval, ``(n - capacity) / rate``. Reported: wall / bound,
the 429s the server sent, and the refill rate the governor learned vs the server's.

``python -m benchmarks.governor_limits [--quick]``
"""

from __future__ import annotations

import asyncio
import sys

from aurous_async import AsyncAurous
from aurous_async._clock import ScaledClock
from aurous_async.testing import DOCUMENTED_BUCKETS, run_emulator
from aurous_async.testing._settings import BucketSpec

#: API seconds per real second: slow enough that the client's and the emulator's own CPU
#: time (about a millisecond per create on a shared core) stays small in API seconds.
SCALE = 20.0

#: (label, capacity, per minute, creates beyond the capacity): a minute of pacing each,
#: three minutes for the documented plan (the naive 300-create fan-out).
SCENARIOS = (
    ("documented (120, 60/min)", 120, 60.0, 180),
    ("smaller plan (10, 60/min)", 10, 60.0, 60),
    ("same capacity, half the refill (120, 30/min)", 120, 30.0, 30),
    ("larger plan (240, 240/min)", 240, 240.0, 240),
)


class Outcome:
    """One scenario's figures."""

    def __init__(
        self,
        label: str,
        n: int,
        wall: float,
        bound: float,
        refused: int,
        learned: float,
        rate: float,
    ) -> None:
        self.label = label
        self.n = n
        self.wall = wall
        self.bound = bound
        self.refused = refused
        self.learned = learned
        self.rate = rate

    def row(self) -> str:
        return (
            f"| {self.label} | {self.n} | {self.wall:.1f} | {self.bound:.1f} | "
            f"{self.wall / self.bound:.3f} | {self.refused} | {self.learned:.4f} | "
            f"{self.rate:.4f} | {self.learned / self.rate:.3f} |"
        )


async def scenario(label: str, capacity: int, per_minute: float, extra: int) -> Outcome:
    """Run ``capacity + extra`` concurrent creates against one undocumented bucket."""
    clock = ScaledClock(SCALE)
    buckets = {**DOCUMENTED_BUCKETS, "images_post": BucketSpec(capacity, per_minute)}
    n = capacity + extra
    async with (
        run_emulator(
            time_scale=1000.0,
            rate_clock=clock,
            buckets=buckets,
            initial_credits=1e7,
            record_requests=True,
        ) as emu,
        AsyncAurous(emu.api_key, base_url=emu.base_url, clock=clock) as client,
    ):
        started = clock.time()
        await asyncio.gather(*(client.images.create(prompt=f"bench {i}") for i in range(n)))
        wall = clock.time() - started
        statuses = [r.status for r in emu.requests if r.path == "/v1/images"]
        learned = client.rate_limits["images_post"].refill_per_second or 0.0
    rate = per_minute / 60.0
    return Outcome(label, n, wall, extra / rate, statuses.count(429), learned, rate)


async def main_async(quick: bool) -> str:
    rounds = 1 if quick else 3
    lines = [
        "## governor_limits",
        "",
        f"Concurrent creates against `images_post` plans the SDK's table does not describe "
        f"(API seconds on a {SCALE:g}x clock shared by emulator and client; "
        f"{rounds} run(s) per plan, each row one run).",
        "",
        "| plan | creates | wall (s) | bound (s) | wall / bound | 429s | learned rate/s "
        "| server rate/s | learned / server |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, capacity, per_minute, extra in SCENARIOS:
        for _ in range(rounds):
            outcome = await scenario(label, capacity, per_minute, extra)
            lines.append(outcome.row())
    return "\n".join(lines)


def run(quick: bool = False) -> str:
    """Run the governor benchmarks; return a markdown section."""
    return asyncio.run(main_async(quick))


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]))
