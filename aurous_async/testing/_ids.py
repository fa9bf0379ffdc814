"""Prefixed opaque ids (`<prefix>_<ULID>`), as the real API mints them."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now: float | None = None) -> str:
    """Return a 26-character ULID: 48 bits of milliseconds, 80 random bits."""
    ms = int((time.time() if now is None else now) * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str, now: float | None = None) -> str:
    """Return ``<prefix>_<ulid>``."""
    return f"{prefix}_{ulid(now)}"
