"""How a command's coroutine is run: Ctrl-C cancels it and then interrupts, on 3.10 too."""

from __future__ import annotations

import asyncio
import signal

import pytest

from aurous_async._cli._run import run


def test_ctrl_c_cancels_the_command_and_then_raises_keyboard_interrupt() -> None:
    """The first SIGINT cancels the command, whose cleanup may still await, then
    ``KeyboardInterrupt`` is raised (never in the middle of the command's code)."""
    steps: list[str] = []

    async def command() -> int:
        try:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C while the command runs
            steps.append("still running")
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0)
            steps.append("cleaned up")
            raise
        return 0

    with pytest.raises(KeyboardInterrupt):
        run(command())
    assert steps == ["still running", "cleaned up"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_command_that_ends_returns_its_result() -> None:
    """Without an interrupt, the command's result comes back and SIGINT is as before."""

    async def command() -> int:
        await asyncio.sleep(0)
        return 3

    assert run(command()) == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
