"""A client belongs to the event loop it was first used in; other loops get a typed error."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest
from _sdk_helpers import FAST_RETRY

from aurous_async import AsyncAurous, AurousError, EventLoopMismatchError
from aurous_async.testing import run_emulator


async def _used_once() -> AsyncAurous:
    """A client that made one call, left open, in an emulator that is then stopped."""
    async with run_emulator() as emu:
        client = AsyncAurous(emu.api_key, base_url=emu.base_url, retry=FAST_RETRY)
        await client.team.get()
        return client


def test_a_client_from_an_earlier_asyncio_run_raises_a_typed_error() -> None:
    """A client used in one ``asyncio.run`` and then another raises
    ``EventLoopMismatchError`` on every call, and leaves no unclosed pool behind."""
    clients = [asyncio.run(_used_once())]

    async def use_again() -> None:
        for _ in range(2):
            with pytest.raises(EventLoopMismatchError, match="has since closed") as info:
                await clients[0].team.get()
            assert isinstance(info.value, AurousError)
            assert isinstance(info.value, RuntimeError)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(use_again())
        clients.clear()  # the last reference: any unclosed pool would warn now
        gc.collect()
    assert [str(w.message) for w in caught] == []


def test_a_wait_from_an_earlier_run_fails_at_once_with_the_typed_error() -> None:
    """A wait in the second loop ends with ``EventLoopMismatchError`` on its first poll,
    without polling again."""
    client = asyncio.run(_used_once())

    async def wait_again() -> None:
        with pytest.raises(EventLoopMismatchError):
            await asyncio.wait_for(client.wait("img_0123456789"), 30.0)
        assert client._poller.stats["gets"] == 1
        await client.close()

    asyncio.run(wait_again())


def test_a_client_from_an_earlier_run_can_still_be_closed() -> None:
    """``close()`` in the second loop releases the first loop's pool without an error."""
    client = asyncio.run(_used_once())

    async def close() -> None:
        await client.close()
        assert client.closed
        with pytest.raises(RuntimeError, match="closed"):
            await client.team.get()

    asyncio.run(close())


def test_a_loop_that_is_still_open_is_named_and_nothing_is_sent() -> None:
    """While the first loop is open, another loop's call is refused before any request,
    and ``close()`` must happen in the first loop."""
    first = asyncio.new_event_loop()
    try:
        emulator = run_emulator()
        emu = first.run_until_complete(emulator.__aenter__())
        client = AsyncAurous(emu.api_key, base_url=emu.base_url, retry=FAST_RETRY)
        first.run_until_complete(client.team.get())
        sent = len(emu.requests)

        async def elsewhere() -> None:
            with pytest.raises(EventLoopMismatchError, match="still open"):
                await client.balance.get()
            with pytest.raises(EventLoopMismatchError):
                await client.close()

        asyncio.run(elsewhere())
        assert len(emu.requests) == sent
        first.run_until_complete(client.close())
        first.run_until_complete(emulator.__aexit__(None, None, None))
    finally:
        first.close()
