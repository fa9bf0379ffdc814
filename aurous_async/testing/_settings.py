"""Emulator settings: every knob a test or benchmark may turn, with documented defaults."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import attrs

from aurous_async._clock import Clock, ScaledClock

API_VERSION = "2026-05-15"
KNOWN_VERSIONS = frozenset({API_VERSION})

#: The demo team's key: ``al_live_`` + 64 hex characters, stable across runs.
DEMO_API_KEY = "al_live_" + hashlib.sha256(b"aurous-emulator-demo-key").hexdigest()
DEMO_TEAM_NAME = "Demo Studio"

#: Prompts containing one of these words are refused at create and estimate (A19).
DEFAULT_BLOCKED_TERMS = ("aurous-blocked-test-word",)


@attrs.frozen
class BucketSpec:
    """A token bucket: ``capacity`` tokens (burst), refilled at ``per_minute``."""

    capacity: int
    per_minute: float

    @property
    def per_second(self) -> float:
        """The refill rate in tokens per second."""
        return self.per_minute / 60.0


#: Contract §4.1. ``webhooks_test`` burst and ``default`` are choices (contract-notes.md).
DOCUMENTED_BUCKETS: Mapping[str, BucketSpec] = {
    "get": BucketSpec(1200, 600),
    "images_post": BucketSpec(120, 60),
    "estimate_post": BucketSpec(240, 120),
    "files": BucketSpec(60, 30),
    "webhook_endpoints": BucketSpec(10, 10),
    "webhooks_test": BucketSpec(30, 30),
    "characters_post": BucketSpec(60, 30),
    "characters_synthesize": BucketSpec(12, 6),
    "characters_get": BucketSpec(240, 120),
    "default": BucketSpec(120, 60),
}


@attrs.frozen(kw_only=True)
class EmulatorSettings:
    """How an emulator behaves. Defaults are the documented values.

    Args:
        host, port: where to listen; port 0 picks a free port.
        time_scale: job lifecycles and expiry timers run this many times faster than
            real time (never the rate-limit buckets).
        clock: the job clock; defaults to ``ScaledClock(time_scale)``.
        rate_clock: the token buckets' clock (real time unless a test injects one).
        buckets: per-bucket capacity and refill; defaults to the documented values.
        initial_status: ``"queued"`` or ``"pending"`` (A2).
        output_retention: seconds output URLs stay valid (A4).
        allow_http_webhooks: accept ``http://`` receiver URLs (``run_emulator`` sets it).
        deliver_beyond_loopback: send webhooks to hosts other than loopback ones. Off by
            default, so an emulator never reaches the internet: such a delivery is
            recorded as a failed attempt, as an unreachable receiver would be.
        concurrency_limit: in-flight generations per team, ``None`` for no cap (A9).
        blocked_terms: prompt words refused with ``prompt_blocked`` (A19).
        initial_credits: the demo team's starting balance.
        balance_low_threshold: ``usage.balance_low`` fires at or below this.
        record_requests: keep a log of every request for tests.
        public_base_url: the base of URLs the emulator hands out; defaults to its own.
        signing_clock: the clock webhook signatures' ``t=`` is read from; real time
            unless a test injects one (receivers check it against their real clock).
        control_token: serve the ``/_emulator/`` control routes to requests bearing
            this token; ``None`` (the default) serves none.
        video_output_bytes: pad every video output to at least this many bytes (a
            trailing MP4 ``free`` box of seeded random bytes), for tests and benchmarks
            of large downloads; ``None`` (the default) serves the small MP4 as it is.
    """

    host: str = "127.0.0.1"
    port: int = 0
    time_scale: float = 1.0
    clock: ScaledClock | None = None
    rate_clock: Clock | None = None
    buckets: Mapping[str, BucketSpec] = DOCUMENTED_BUCKETS
    initial_status: str = "queued"
    output_retention: float = 24 * 3600.0
    allow_http_webhooks: bool = False
    deliver_beyond_loopback: bool = False
    concurrency_limit: int | None = None
    blocked_terms: tuple[str, ...] = DEFAULT_BLOCKED_TERMS
    initial_credits: float = 1000.0
    balance_low_threshold: float = 10.0
    record_requests: bool = True
    public_base_url: str | None = None
    start_time: float | None = None
    signing_clock: Clock | None = None
    control_token: str | None = attrs.field(default=None, repr=False)
    video_output_bytes: int | None = None
