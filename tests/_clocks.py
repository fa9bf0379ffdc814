"""Virtual clocks for tests: time moves only when a test or a sleeper moves it."""

from __future__ import annotations

import anyio
import anyio.lowlevel


class SteppingClock:
    """A sleep yields once, then moves the clock by its full delay (recorded in ``slept``)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await anyio.lowlevel.checkpoint()
        self.slept.append(seconds)
        self.now += max(0.0, seconds)


class ManualClock:
    """Time moves only on ``advance()``; sleepers wake when their deadline has passed."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, anyio.Event]] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        event = anyio.Event()
        self._sleepers.append((self.now + seconds, event))
        await event.wait()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for deadline, event in self._sleepers:
            if deadline <= self.now + 1e-9:
                event.set()
        self._sleepers = [(d, e) for d, e in self._sleepers if not e.is_set()]
