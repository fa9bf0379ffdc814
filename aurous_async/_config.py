"""Client configuration: the pinned API version, environment names and tuning values.

Every value object is frozen and states its defaults in its signature, so
``RetryPolicy()`` is the documented behaviour and ``RetryPolicy(max_attempts=1)``
switches retries off.
"""

from __future__ import annotations

import attrs

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUTS",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_REDIS_URL",
    "Limits",
    "RetryPolicy",
    "Timeouts",
]

#: The ``Aurous-Version`` this release speaks (contract A1).
API_VERSION = "2026-05-15"
DEFAULT_BASE_URL = "https://api.aurous-labs.com"
ENV_API_KEY = "AUROUS_API_KEY"
ENV_BASE_URL = "AUROUS_BASE_URL"
#: Fleet mode's Redis URL when ``redis_url`` is not given.
ENV_REDIS_URL = "AUROUS_REDIS_URL"
#: The largest API answer (JSON) read; output downloads are not capped.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:  # also refuses NaN
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class Timeouts:
    """Per-attempt socket timeouts in seconds.

    Args:
        connect: time to establish a connection (including TLS).
        read: time to wait for the response of one attempt: for the whole of an API
            response, for each chunk of a download (output bytes).

    The total time of a call, over all attempts and waits, is ``RetryPolicy.timeout``.
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    read: float = attrs.field(default=60.0, validator=_positive)


@attrs.frozen
class RetryPolicy:
    """How failed attempts are retried.

    Args:
        max_attempts: attempts per call, the first included; ``1`` disables retries.
        timeout: the total deadline in seconds over all attempts and waits of one
            call (``math.inf`` for none).
        initial_wait: the first backoff wait in seconds; it doubles per attempt.
        max_wait: the cap of one backoff wait (a server's ``Retry-After`` may exceed it).
        jitter: at most this many seconds are added at random to each wait; jitter
            only ever lengthens a wait.
    """

    max_attempts: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    timeout: float = attrs.field(default=120.0, validator=_positive)
    initial_wait: float = attrs.field(default=0.5, validator=_non_negative)
    max_wait: float = attrs.field(default=30.0, validator=_non_negative)
    jitter: float = attrs.field(default=1.0, validator=_non_negative)


@attrs.frozen
class Limits:
    """Connection-pool limits.

    Args:
        max_connections: open connections in total; ``0`` means unlimited.
        max_connections_per_host: open connections per host; ``0`` means unlimited.
        keepalive_timeout: seconds an idle connection is kept for reuse.
    """

    max_connections: int = attrs.field(default=100, validator=attrs.validators.ge(0))
    max_connections_per_host: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    keepalive_timeout: float = attrs.field(default=30.0, validator=_non_negative)


DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_RETRY = RetryPolicy()
DEFAULT_LIMITS = Limits()
