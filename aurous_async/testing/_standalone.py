"""The emulator as a standalone server (``aurous emulator``, ``python -m aurous_async.testing``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
from collections.abc import Sequence

import attrs

from ._server import serve
from ._settings import DOCUMENTED_BUCKETS, BucketSpec, EmulatorSettings

#: Where ``--control-token`` is read from when not given (keeps it out of ``ps``).
ENV_CONTROL_TOKEN = "AUROUS_EMULATOR_CONTROL_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8787, help="port (0 picks a free one)")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="run job lifecycles N times faster"
    )
    parser.add_argument(
        "--allow-http-webhooks",
        action="store_true",
        help="accept http:// loopback webhook receivers (tests and local development)",
    )
    parser.add_argument(
        "--deliver-beyond-loopback",
        action="store_true",
        help="send webhooks to non-loopback hosts too (off: the emulator stays offline)",
    )
    parser.add_argument(
        "--bucket-scale",
        type=float,
        default=1.0,
        help="multiply every rate-limit bucket's capacity and refill (benchmarks)",
    )
    parser.add_argument(
        "--bucket",
        action="append",
        default=[],
        type=_bucket_override,
        metavar="NAME=CAPACITY/PER_MINUTE",
        help="set one rate-limit bucket, after --bucket-scale (repeatable; benchmarks)",
    )
    parser.add_argument("--credits", type=float, default=1000.0, help="the demo team's balance")
    parser.add_argument(
        "--no-request-log", action="store_true", help="do not keep a log of requests in memory"
    )
    parser.add_argument(
        "--control-token",
        default=os.environ.get(ENV_CONTROL_TOKEN) or None,
        help=(
            "serve the /_emulator/ control routes (stats, faults, clock, teams, ...) to "
            f"requests sending 'Authorization: Bearer <token>' (default: ${ENV_CONTROL_TOKEN}; "
            "unset: no control routes)"
        ),
    )


def settings_from(args: argparse.Namespace) -> EmulatorSettings:
    buckets = DOCUMENTED_BUCKETS
    if args.bucket_scale != 1.0:
        buckets = {
            name: BucketSpec(
                int(spec.capacity * args.bucket_scale), spec.per_minute * args.bucket_scale
            )
            for name, spec in DOCUMENTED_BUCKETS.items()
        }
    if args.bucket:
        buckets = {**buckets, **dict(args.bucket)}
    return attrs.evolve(
        EmulatorSettings(),
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        allow_http_webhooks=args.allow_http_webhooks,
        deliver_beyond_loopback=args.deliver_beyond_loopback,
        buckets=buckets,
        initial_credits=args.credits,
        record_requests=not args.no_request_log,
        control_token=args.control_token,
    )


def _bucket_override(text: str) -> tuple[str, BucketSpec]:
    name, _, spec = text.partition("=")
    capacity, _, per_minute = spec.partition("/")
    try:
        parsed = BucketSpec(int(capacity), float(per_minute))
    except ValueError:
        parsed = None
    if not name or name not in DOCUMENTED_BUCKETS or parsed is None or parsed.capacity < 1:
        raise argparse.ArgumentTypeError(
            f"expected NAME=CAPACITY/PER_MINUTE with a documented bucket name, got {text!r}"
        )
    if not parsed.per_minute > 0:
        raise argparse.ArgumentTypeError(f"the refill must be positive, got {text!r}")
    return name, parsed


async def run_forever(settings: EmulatorSettings) -> None:
    async with serve(settings) as emulator:
        # This process is only the server: move everything built at start-up (modules,
        # pricing tables, the app) out of the collector's reach. Full collections then
        # scan only what requests create, instead of stalling every request queued
        # behind them (p99 at 2,000 req/s: 34-131 ms before, ~11 ms after).
        gc.collect()
        gc.freeze()
        print(f"Aurous emulator listening on {emulator.base_url}", flush=True)
        print(f"Demo API key: {emulator.api_key}", flush=True)
        print(
            f"export AUROUS_BASE_URL={emulator.base_url} AUROUS_API_KEY={emulator.api_key}",
            flush=True,
        )
        if settings.control_token:
            print(f"Control routes: {emulator.base_url}/_emulator/ (bearer token)", flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aurous_async.testing", description="Run the Aurous API emulator."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_forever(settings_from(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
