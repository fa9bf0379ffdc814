"""Prefixed opaque ids (`<prefix>_<ULID>`), as the real API mints them."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Two Crockford digits for each 10-bit value: a ULID is 13 lookups instead of 26.
_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
#: Where each pair of digits sits in the 130 bits of 26 digits, most significant first.
_SHIFTS = range(120, -1, -10)


def ulid(now: float | None = None) -> str:
    """Return a 26-character ULID: 48 bits of milliseconds, 80 random bits."""
    ms = int((time.time() if now is None else now) * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def new_id(prefix: str, now: float | None = None) -> str:
    """Return ``<prefix>_<ulid>``."""
    return f"{prefix}_{ulid(now)}"
