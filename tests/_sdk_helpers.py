"""Shared helpers of the SDK tests: an emulator plus a client on a fast clock, test images."""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from aurous_async import AsyncAurous, RetryPolicy
from aurous_async._clock import ScaledClock
from aurous_async.testing import Emulator, run_emulator

#: Retries that wait a millisecond of real time at most.
FAST_RETRY = RetryPolicy(
    max_attempts=4, timeout=60.0, initial_wait=0.001, max_wait=0.01, jitter=0.0
)


def png(width: int = 64, height: int = 48) -> bytes:
    """A valid, tiny PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@contextlib.asynccontextmanager
async def emulated(
    *,
    time_scale: float = 1000.0,
    rate_scale: float = 1000.0,
    retry: RetryPolicy = FAST_RETRY,
    client_options: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[Emulator, AsyncAurous]]:
    """An emulator and a client sharing one fast rate clock, both closed on exit."""
    clock = ScaledClock(rate_scale)
    async with (
        run_emulator(time_scale=time_scale, rate_clock=clock, **settings) as emu,
        AsyncAurous(
            emu.api_key,
            base_url=emu.base_url,
            clock=clock,
            retry=retry,
            **(client_options or {}),
        ) as client,
    ):
        yield emu, client


def settle(emu: Emulator, seconds: float = 3600.0) -> None:
    """Let every pending job of the emulator finish (jumps its job clock)."""
    emu.advance(seconds)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serve(routes: list[tuple[str, str, Handler]]) -> AsyncIterator[str]:
    """Serve a bare aiohttp app on a free loopback port; yield its base URL."""
    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
