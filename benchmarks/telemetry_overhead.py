"""Issue 16: client CPU per ``images.get`` with OpenTelemetry on, against it off.

The canned server of ``client_cpu`` runs in its own process (core 0); the clients run
here (core 1), each with its own warm pool, in interleaved rounds (the starting client
rotates), and each round gives one ratio against the client built with
``tracing=False``, which is the client ``opentelemetry-api`` being absent gives (the
same plain classes; nothing of OpenTelemetry is imported). Two phases, one process:

1. ``opentelemetry-api`` installed, no SDK configured (no tracer or meter provider):
   the default client against ``tracing=False``. Target: within 5%.
2. Then the SDK configured (a tracer provider with a span processor that drops every
   span, a meter provider with a reader nobody reads): what recording costs.

CPU is ``time.process_time`` over a batch of requests at concurrency 1, per request.
Rounds on a shared machine scatter by tens of percent, so the code the traced client
adds on the no-SDK path is also timed alone (``timeit``, best of several repeats): the
dispatch in ``TracedRequester._run`` and the pass-through of its transport wrapper,
against the plain methods, without I/O.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import subprocess
import sys
import time
import timeit
from typing import TYPE_CHECKING

from ._proc import CLIENT_CORE, pin_to, server
from .client_cpu import API_KEY, Fetch, _batch, _settle_allocator

if TYPE_CHECKING:
    from aurous_async import AsyncAurous

TARGET = 1.05
OFF = "`tracing=False` (as without opentelemetry-api)"
NO_SDK = "opentelemetry-api, no SDK configured"
SDK = "opentelemetry-sdk configured (spans dropped)"
#: Client name -> CPU seconds per request, one value per round.
Samples = dict[str, list[float]]


def _configure_sdk() -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    provider = TracerProvider()
    provider.add_span_processor(SpanProcessor())  # the base class: ignores every span
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


async def _rounds(clients: dict[str, Fetch], *, requests: int, rounds: int) -> Samples:
    order = list(clients)
    for fetch in clients.values():
        await _batch(fetch, max(100, requests // 2), 1)  # warm-up
    per_request: dict[str, list[float]] = {name: [] for name in clients}
    for r in range(rounds):
        shift = r % len(order)
        for name in order[shift:] + order[:shift]:
            gc.collect()
            start = time.process_time()
            await _batch(clients[name], requests, 1)
            per_request[name].append((time.process_time() - start) / requests)
    return per_request


def _added_seconds(client: AsyncAurous, url: str) -> float:
    """Seconds per call the traced client adds while no provider is set, timed alone."""
    from aurous_async._json import loads
    from aurous_async._requester import Call, Reply, Requester

    requester = client._requester
    wrapper = requester.transport
    inner = client._transport
    call = Call(method="GET", path="/v1/images/x", route="/v1/images/{id}", idempotent=True)

    def itself(reply: Reply) -> Reply:
        return reply

    def traced() -> None:
        requester._run(call, itself, loads).close()
        wrapper.send("GET", url, headers={}).close()
        wrapper.attempt_bound, wrapper.loop  # noqa: B018 (read once per call)

    def plain() -> None:
        Requester._run(requester, call, itself, loads).close()
        inner.send("GET", url, headers={}).close()
        inner.attempt_bound, inner.loop  # noqa: B018

    number = 20_000
    best = {
        name: min(timeit.repeat(fn, number=number, repeat=7)) / number
        for name, fn in (("traced", traced), ("plain", plain))
    }
    return best["traced"] - best["plain"]


async def _measure(url: str, *, requests: int, rounds: int) -> tuple[Samples, Samples, float]:
    from aurous_async import AsyncAurous
    from benchmarks._canned_server import GENERATION_ID

    async with (
        AsyncAurous(api_key=API_KEY, base_url=url, tracing=False) as off,
        AsyncAurous(api_key=API_KEY, base_url=url) as on,
    ):

        def getter(client: AsyncAurous) -> Fetch:
            async def get() -> None:
                await client.images.get(GENERATION_ID)

            return get

        no_sdk = await _rounds(
            {OFF: getter(off), NO_SDK: getter(on)}, requests=requests, rounds=rounds
        )
        added = _added_seconds(on, url)
        _configure_sdk()
        with_sdk = await _rounds(
            {OFF: getter(off), SDK: getter(on)}, requests=requests, rounds=rounds
        )
    return no_sdk, with_sdk, added


def _ratio(samples: Samples, name: str) -> float:
    return statistics.median(
        mine / base for mine, base in zip(samples[name], samples[OFF], strict=True)
    )


def _row(name: str, samples: Samples) -> str:
    ratios = [mine / base for mine, base in zip(samples[name], samples[OFF], strict=True)]
    return (
        f"| {name} | {statistics.median(samples[name]) * 1e6:.1f} "
        f"| {statistics.median(ratios):.3f}x ({min(ratios):.2f}-{max(ratios):.2f}) |"
    )


def run(quick: bool = False) -> str:
    """Measure both phases in a process of their own and return the markdown section.

    Phase 2 sets OpenTelemetry's global providers, which cannot be unset: in the
    benchmark runner's process they would trace every client measured after it.
    """
    command = [sys.executable, "-m", "benchmarks.telemetry_overhead"]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def measure(quick: bool) -> str:
    """Measure both phases here and return the markdown section."""
    pin_to(CLIENT_CORE)
    _settle_allocator()
    requests = 100 if quick else 200
    rounds = 11 if quick else 41
    with server(["-m", "benchmarks._canned_server"]) as srv:
        no_sdk, with_sdk, added = asyncio.run(_measure(srv.url, requests=requests, rounds=rounds))
    overhead = _ratio(no_sdk, NO_SDK)
    off_cpu = statistics.median(no_sdk[OFF])
    word = "MEETS" if overhead <= TARGET else "MISSES"
    lines = [
        "## OpenTelemetry overhead per `images.get` (issue 16)",
        "",
        f"{requests} requests per client per round at concurrency 1, {rounds} interleaved "
        "rounds per phase; CPU us per request is the median over rounds, the ratio the "
        "median of per-round ratios against `tracing=False` in the same phase (min-max in "
        "brackets).",
        "",
        "| client | CPU us / request | vs `tracing=False` |",
        "|---|---|---|",
        f"| {OFF} | {off_cpu * 1e6:.1f} | 1 |",
        _row(NO_SDK, no_sdk),
        _row(SDK, with_sdk),
        "",
        f"**Verdict: with opentelemetry-api installed and no SDK, the client {word} the "
        f"5% target ({overhead:.3f}x).** The code it adds per call on that path, timed "
        f"alone: {added * 1e9:.0f} ns, {added / off_cpu:.2%} of the `tracing=False` "
        f"client's CPU per request. With the SDK recording (phase 2): "
        f"{_ratio(with_sdk, SDK):.3f}x.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(measure(quick="--quick" in sys.argv[1:]))
