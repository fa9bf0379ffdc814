"""Injectable time: every piece of behaviour that depends on time takes a ``Clock``.

``SystemClock`` is real time. ``ScaledClock`` runs N times faster than real time (and
can be jumped forward), so a test can share one fast clock between the emulator's
rate-limit buckets and the SDK's governor and run minutes of pacing in milliseconds.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "ScaledClock", "SystemClock"]


class Clock(Protocol):
    """Wall-clock time in epoch seconds and a matching sleep."""

    def time(self) -> float:
        """Return the current instant in Unix epoch seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Real time."""

    # The C function itself: read on every request, and a method around it is a frame.
    time = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of real time (a negative delay returns at once)."""
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class ScaledClock:
    """A clock that runs ``scale`` times faster than real time.

    Args:
        scale: how many clock seconds pass per real second.
        start: the clock's epoch time now; defaults to the real time now.
    """

    def __init__(self, scale: float = 1.0, *, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._start = time.time() if start is None else start
        self._anchor = time.monotonic()
        self._offset = 0.0

    def time(self) -> float:
        """Return this clock's instant in Unix epoch seconds, jumps included."""
        return self._start + (time.monotonic() - self._anchor) * self.scale + self._offset

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of clock time, that is ``seconds / scale`` of real time."""
        await anyio.sleep(max(0.0, seconds) / self.scale)

    def advance(self, seconds: float) -> None:
        """Jump the clock forward; sleepers already waiting are not woken early."""
        if seconds < 0:
            raise ValueError("a clock never goes back")
        self._offset += seconds

    def __repr__(self) -> str:
        return f"ScaledClock(scale={self.scale})"
