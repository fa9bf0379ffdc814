"""Per-team token buckets with the exact header arithmetic of contract A9."""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from aurous_async._clock import Clock

from ._settings import BucketSpec


@attrs.frozen
class Decision:
    """The outcome of taking one token: headers to send, and whether it was refused."""

    limit: int
    remaining: int
    reset: int
    retry_after: int | None

    @property
    def allowed(self) -> bool:
        return self.retry_after is None

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if self.retry_after is not None:
            out["Retry-After"] = str(self.retry_after)
        return out


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``rate`` per second."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, spec: BucketSpec, now: float) -> None:
        self.capacity = spec.capacity
        self.rate = spec.per_second
        self.tokens = float(spec.capacity)
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def _reset_at(self, now: float) -> int:
        return math.ceil(now + (self.capacity - self.tokens) / self.rate)

    def take(self, now: float) -> Decision:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return Decision(self.capacity, int(self.tokens), self._reset_at(now), None)
        retry_after = max(1, math.ceil((1.0 - self.tokens) / self.rate))
        return Decision(self.capacity, 0, self._reset_at(now), retry_after)

    def peek(self, now: float) -> Decision:
        self._refill(now)
        return Decision(self.capacity, int(self.tokens), self._reset_at(now), None)


class RateLimiter:
    """All teams' buckets. Counting is atomic: the emulator runs on one event loop."""

    def __init__(self, specs: Mapping[str, BucketSpec], clock: Clock) -> None:
        self._specs = specs
        self._clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def _bucket(self, team_id: str, name: str) -> TokenBucket:
        key = (team_id, name)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._specs[name], self._clock.time())
        return bucket

    def take(self, team_id: str, name: str) -> Decision:
        return self._bucket(team_id, name).take(self._clock.time())

    def peek(self, team_id: str, name: str) -> Decision:
        return self._bucket(team_id, name).peek(self._clock.time())

    def refuse(self, team_id: str, name: str, retry_after: int) -> Decision:
        """A forced 429 (fault mode) that names its own wait; the bucket is untouched."""
        bucket = self._bucket(team_id, name)
        return Decision(bucket.capacity, 0, bucket.peek(self._clock.time()).reset, retry_after)
