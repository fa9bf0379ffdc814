"""What every fault scenario checks once the user's code is done.

``scenario()`` yields an emulator and a client (both on fast clocks) and, on the way out,
asserts the user-level invariants of issue 6: no task left behind, no unclosed session
(``filterwarnings = error`` turns the ``ResourceWarning`` into a failure once ``gc``
runs), and no secret in any log record of the SDK at DEBUG level.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aurous_async import AsyncAurous, RetryPolicy
from aurous_async._clock import ScaledClock
from aurous_async.testing import Emulator, run_emulator

#: Retries that wait a millisecond of real time at most. The retry budget is measured on
#: the client's clock, which runs ``rate_scale`` (1000) times faster than real time: one
#: hour of it is 3.6 real seconds.
FAST_RETRY = RetryPolicy(
    max_attempts=6, timeout=3600.0, initial_wait=0.001, max_wait=0.01, jitter=0.0
)
LOGGERS = ("aurous_async", "aurous_async.webhooks", "aurous_async.testing")


def _texts(record: logging.LogRecord) -> Iterable[str]:
    yield record.getMessage()
    yield repr(record.args)
    if record.exc_info and record.exc_info[1] is not None:
        yield repr(record.exc_info[1])
        yield str(record.exc_info[1])
    if record.exc_text:
        yield record.exc_text


def assert_no_secret(
    caplog: pytest.LogCaptureFixture, secrets: Iterable[str], *objects: object
) -> None:
    """No secret appears in a captured record, nor in ``str``/``repr`` of ``objects``."""
    wanted = [s for s in secrets if s]
    for record in caplog.records:
        for text in _texts(record):
            for secret in wanted:
                assert secret not in text, f"secret leaked in log record {record.name}"
    for obj in objects:
        for text in (str(obj), repr(obj)):
            for secret in wanted:
                assert secret not in text, f"secret leaked in {type(obj).__name__}"


def _is_test_runner(task: asyncio.Task[Any]) -> bool:
    # anyio's pytest plugin runs a test in its own task, started after fixtures set up.
    return "TestRunner" in getattr(task.get_coro(), "__qualname__", "")


async def assert_no_leaks(before: set[asyncio.Task[Any]]) -> None:
    """Every task started since ``before`` has finished; unclosed sessions surface."""
    await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = [
        t
        for t in asyncio.all_tasks() - before
        if t is not current and not t.done() and not _is_test_runner(t)
    ]
    assert not leaked, f"tasks left running: {[t.get_coro() for t in leaked]}"
    gc.collect()


@contextlib.asynccontextmanager
async def scenario(
    caplog: pytest.LogCaptureFixture,
    *,
    retry: RetryPolicy = FAST_RETRY,
    time_scale: float = 1000.0,
    rate_scale: float = 1000.0,
    secrets: Iterable[str] = (),
    client_options: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[Emulator, AsyncAurous]]:
    """An emulator and a client; the invariants are checked once both are closed."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    before = asyncio.all_tasks()
    clock = ScaledClock(rate_scale)
    async with run_emulator(time_scale=time_scale, rate_clock=clock, **settings) as emu:
        keys = [k.secret for k in emu.state.keys.values()]
        async with AsyncAurous(
            emu.api_key, base_url=emu.base_url, clock=clock, retry=retry, **(client_options or {})
        ) as client:
            yield emu, client
        keys += [k.secret for k in emu.state.keys.values()]
        keys += [e.secret for e in emu.state.webhooks.endpoints.values()]
    await assert_no_leaks(before)
    assert_no_secret(caplog, [*keys, *secrets])


def committed_ids(emu: Emulator) -> list[str]:
    """The ids of every generation the server committed, oldest first."""
    return [str(row["id"]) for row in emu.generations()]


class Receiver:
    """A user's webhook endpoint on a loopback port, around any aiohttp handler."""

    def __init__(self, app: web.Application) -> None:
        self.server = TestServer(app, host="127.0.0.1")

    async def __aenter__(self) -> Receiver:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()

    def url(self, path: str = "/webhooks") -> str:
        return str(self.server.make_url(path))
