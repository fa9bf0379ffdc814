"""Pure retry decisions: whether a failed attempt is retried, and after how long.

The rules (contract §6.2, §7, A8):

* No complete answer (connection refused or cut, timeout, garbled 2xx body): retried
  when the call is idempotent (a read, a naturally idempotent action, or a create that
  carries its ``Idempotency-Key``). A non-idempotent call is retried only when the
  failure proves the request never reached the server (``maybe_sent=False``, e.g.
  connection refused): otherwise a retry could do the work twice.
* 429: always retried; the rate limiter refuses before anything is processed.
* 5xx and 408: retried when idempotent.
* 409 ``idempotency_key_in_use``: the original attempt with this key is still in
  flight; retried with the same key when idempotent, waiting 0.5 s doubling to 8 s.
* Every other status: never; the request itself must change.

Waits: a server-directed ``Retry-After`` replaces the exponential schedule; otherwise
``initial_wait`` doubles per retry up to ``max_wait``. Jitter is added, never
subtracted. One deadline (``RetryPolicy.timeout``) covers every attempt and wait: a wait
that would end past it gives up instead.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

import backoff

from ._clock import Clock
from ._config import RetryPolicy

__all__ = ["CONFLICT_INITIAL_WAIT", "CONFLICT_MAX_WAIT", "RetryPlan", "is_retryable"]

#: The in-flight idempotency conflict schedule of contract §7: 0.5 s doubling to ~8 s.
CONFLICT_INITIAL_WAIT = 0.5
CONFLICT_MAX_WAIT = 8.0
_KEY_IN_USE = "idempotency_key_in_use"


def is_retryable(
    *,
    idempotent: bool,
    status: int | None = None,
    error_code: str | None = None,
    connection_error: bool = False,
    maybe_sent: bool = True,
) -> bool:
    """Whether a failed attempt may be retried at all (see the module docstring)."""
    if connection_error or status is None:
        return idempotent or not maybe_sent
    if status == 429:
        return True
    if status == 409:
        return idempotent and error_code == _KEY_IN_USE
    return idempotent and (status >= 500 or status == 408)


def _primed(schedule: Generator[Any, Any, None]) -> Generator[float, Any, None]:
    schedule.send(None)  # backoff's wait generators start with a priming yield
    return schedule


class RetryPlan:
    """The retry state of one logical call; ask it after every failed attempt.

    Args:
        policy: attempts, deadline, waits and jitter.
        clock: the time source; the deadline starts when the plan is made.
        idempotent: repeating the call cannot change the outcome (a keyed create is).
        rng: the random source of the jitter.
        started_at: when the call started, by ``clock``, if before the plan is made
            (the deadline counts from then).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Clock,
        *,
        idempotent: bool,
        rng: random.Random | None = None,
        started_at: float | None = None,
    ) -> None:
        self.policy = policy
        self.idempotent = idempotent
        self._clock = clock
        # Most calls succeed at once: the random source and the wait schedules are made
        # on the first failure (seeding a ``random.Random`` costs more than the rest).
        self._rng = rng
        start = clock.time() if started_at is None else started_at
        self._deadline = start + policy.timeout
        self._failures = 0
        self._backoff: Generator[float, Any, None] | None = None
        self._conflict_cap = min(CONFLICT_MAX_WAIT, policy.max_wait)
        self._conflict: Generator[float, Any, None] | None = None

    @property
    def deadline(self) -> float:
        """The epoch time (of the plan's clock) by which the whole call must end."""
        return self._deadline

    @property
    def failures(self) -> int:
        """Failed attempts reported so far."""
        return self._failures

    def remaining(self) -> float:
        """Seconds left until the deadline, never negative."""
        return max(0.0, self._deadline - self._clock.time())

    def next_wait(
        self,
        *,
        status: int | None = None,
        error_code: str | None = None,
        retry_after: float | None = None,
        connection_error: bool = False,
        maybe_sent: bool = True,
    ) -> float | None:
        """Record one failed attempt and say how long to wait before the next.

        Args:
            status: the HTTP status, ``None`` when no complete answer arrived.
            error_code: the envelope's ``code``.
            retry_after: the server-directed wait in seconds (``Retry-After``).
            connection_error: no complete answer arrived.
            maybe_sent: ``False`` only if the request provably never reached the server.

        Returns:
            Seconds to wait, or ``None`` to give up: not retryable, attempts exhausted,
            or the wait would end past the deadline.
        """
        self._failures += 1
        retryable = is_retryable(
            idempotent=self.idempotent,
            status=status,
            error_code=error_code,
            connection_error=connection_error,
            maybe_sent=maybe_sent,
        )
        if not retryable or self._failures >= self.policy.max_attempts:
            return None
        if self._rng is None:
            self._rng = random.Random()
        jitter = self._rng.uniform(0.0, self.policy.jitter)
        if retry_after is not None and retry_after >= 0:
            wait = retry_after + jitter
        elif status == 409:
            if self._conflict is None:
                self._conflict = _primed(
                    backoff.expo(base=2, factor=CONFLICT_INITIAL_WAIT, max_value=self._conflict_cap)
                )
            wait = min(self._conflict_cap, next(self._conflict) + jitter)
        else:
            if self._backoff is None:
                self._backoff = _primed(
                    backoff.expo(
                        base=2, factor=self.policy.initial_wait, max_value=self.policy.max_wait
                    )
                )
            wait = min(self.policy.max_wait, next(self._backoff) + jitter)
        if wait > self.remaining():
            return None
        return wait
