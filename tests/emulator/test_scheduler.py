"""The emulator's background ticker stops when cancelled, whatever it was waiting for."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from aurous_async._clock import ScaledClock
from aurous_async.testing._state import Scheduler

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_ticker_stops_when_cancelled_as_an_event_wakes_it() -> None:
    """An event scheduled in the same loop step as the cancellation (a batch still
    submitting while the emulator shuts down) must not swallow the cancellation, as
    ``asyncio.wait_for`` does before Python 3.12: the shutdown would wait for ever."""
    clock = ScaledClock(1.0)
    scheduler = Scheduler(clock)
    scheduler.at(clock.time() + 3600, lambda due: None)
    ticker = asyncio.get_running_loop().create_task(scheduler.run())
    await asyncio.sleep(0.01)  # the ticker waits for its wake-up event
    scheduler.at(clock.time(), lambda due: None)  # wakes it...
    ticker.cancel()  # ...in the same step as the cancellation
    with pytest.raises(asyncio.CancelledError), anyio.fail_after(5):
        await ticker
