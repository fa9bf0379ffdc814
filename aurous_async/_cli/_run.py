"""Running a command's coroutine so that Ctrl-C ends it the way Python 3.11 does, on 3.10 too.

From 3.11 on, ``asyncio.run`` turns the first SIGINT into a cancellation of the main
task and raises ``KeyboardInterrupt`` once it has unwound. On 3.10 the default handler
raises ``KeyboardInterrupt`` wherever the loop happens to be, which can leave a task
that never finishes; ``asyncio.run`` then waits for it forever while cancelling the
rest, and the command hangs instead of exiting with 130.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, with 3.11's Ctrl-C handling on 3.10."""
    if (
        sys.version_info >= (3, 11)
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        return asyncio.run(main)
    return asyncio.run(_cancelled_by_sigint(main))


async def _cancelled_by_sigint(main: Coroutine[Any, Any, T]) -> T:
    """Await ``main``; the first SIGINT cancels it, then raises ``KeyboardInterrupt``."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1 and not task.done():
            task.cancel()
            loop.call_soon_threadsafe(lambda: None)  # wake the loop from its select()
            return
        raise KeyboardInterrupt  # a second Ctrl-C: stop at once

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        return await main
    except asyncio.CancelledError:
        if interrupts:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
