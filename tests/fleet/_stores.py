"""Helpers for the fleet tests: stores on the test server, and a stand-in API bucket."""

from __future__ import annotations

import logging
import math

import anyio

from aurous_async._fleet._protocol import Observation
from aurous_async._fleet._redis_buckets import RedisBuckets

BASE_URL = "http://127.0.0.1:1"
API_KEY = "sk_live_fleet_test_key_0123456789"
T0 = 1_000_000.0


async def connect(url: str, *, api_key: str = API_KEY, **options: object) -> RedisBuckets:
    """A ``RedisBuckets`` on ``url`` for the test team, with no 429 jitter."""
    options.setdefault("pause_jitter", 0.0)
    return await RedisBuckets.connect(url, base_url=BASE_URL, api_key=api_key, **options)  # type: ignore[arg-type]


class ApiBucket:
    """The API's token bucket for one route, as the server keeps it (for the tests)."""

    def __init__(self, capacity: int, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.level = float(capacity)
        self.updated = now
        self.refused = 0
        self.served = 0

    def take(self, now: float) -> Observation:
        """Count one request at ``now``: its answer's status and headers."""
        now = max(now, self.updated)
        self.level = min(self.capacity, self.level + self.rate * (now - self.updated))
        self.updated = now
        if self.level >= 1:
            self.level -= 1
            self.served += 1
            return Observation(200, self.capacity, math.floor(self.level), None, self.rate)
        self.refused += 1
        retry = math.ceil((1 - self.level) / self.rate)
        return Observation(429, self.capacity, 0, float(retry), self.rate)


class WarningWatch(logging.Handler):
    """Sets ``seen`` when the fleet logger logs a warning (attach with ``watching``)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.set()
